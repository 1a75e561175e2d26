//! The example plugins, built for wasm32-wasip2, through the host.
use sluice::plugin::{FailureKind, PluginLimits};
use sluice::record::Value;
use sluice_testkit::{after, batch, runner};

const USER: &str = r#"{"op":"insert","database":"shop","table":"users","primary_key":["id"],"after":{"id":1,"email":"  Ann@Example.COM ","name":"Ann   Lee","phone":"+49 170 1234567","country":"DE"}}"#;

fn str(s: &str) -> Value {
    Value::Str(s.into())
}

#[test]
fn clean_trims_lowercases_and_masks_both_row_images() {
    let input = batch(&[
        USER,
        r#"{"op":"update","database":"shop","table":"users","primary_key":["id"],
            "before":{"id":2,"email":"b@x.io","name":"B","phone":"555-0000","country":"US"},
            "after":{"id":2,"email":"B@X.IO","name":"B","phone":"555-9999","country":"US"}}"#,
    ]);
    let mut clean = runner("clean", &[("mask", "phone"), ("mask_style", "last4")], PluginLimits::default());
    let out = clean.transform(input);
    assert_eq!(after(&out, 0, 0, "email"), str("ann@example.com"));
    assert_eq!(after(&out, 0, 0, "name"), str("Ann Lee"));
    assert_eq!(after(&out, 0, 0, "phone"), str("****4567"));
    let update = &out.outputs[1].as_ref().unwrap()[0];
    assert_eq!(
        update.before.as_ref().unwrap()[3],
        str("****0000"),
        "the before image is masked too"
    );
    assert_eq!(update.after.as_ref().unwrap()[1], str("b@x.io"));
}

#[test]
fn clean_drops_or_rejects_rows_that_fail_its_rules() {
    let input = batch(&[
        USER,
        r#"{"op":"insert","database":"shop","table":"users","after":{"id":3,"email":"not-an-email","name":"C","phone":null,"country":"FR"}}"#,
        r#"{"op":"insert","database":"shop","table":"users","after":{"id":4,"email":"d@x.io","name":"","phone":null,"country":"FR"}}"#,
        r#"{"op":"delete","database":"shop","table":"users","before":{"id":5,"email":"broken","name":"","phone":null,"country":"FR"}}"#,
    ]);
    let mut dropping = runner("clean", &[("require", "name")], PluginLimits::default());
    let out = dropping.transform(input.clone());
    let counts: Vec<usize> = out.outputs.iter().map(|o| o.as_ref().unwrap().len()).collect();
    assert_eq!(counts, [1, 0, 0, 1], "invalid rows dropped, deletes always kept");
    assert_eq!(dropping.counters().lock().unwrap()["clean.invalid"], 2);

    let mut rejecting = runner("clean", &[("require", "name"), ("on_invalid", "reject")], PluginLimits::default());
    let out = rejecting.transform(input);
    let failure = &out.outputs[1].as_ref().unwrap_err().failure;
    assert_eq!(failure.kind, FailureKind::Rejected);
    assert_eq!(
        out.outputs[1].as_ref().unwrap_err().record.get("id"),
        Some(&Value::Int(3)),
        "the failed record comes back whole"
    );
    assert_eq!(failure.kind, FailureKind::Rejected);
    assert!(failure.message.contains("not an email address"), "{failure}");
    assert!(out.outputs[2].as_ref().unwrap_err().failure.message.contains("`name` is empty"));
    assert!(out.outputs[0].is_ok() && out.outputs[3].is_ok());
}

#[test]
fn clean_refuses_a_bad_config_at_start() {
    let host = sluice::plugin::PluginHost::new(sluice_testkit::engine());
    host.load_file(&sluice_testkit::plugin_path("clean")).unwrap();
    let e = host
        .runner("clean", vec![("mask_style".into(), "blur".into())], PluginLimits::default())
        .unwrap_err();
    assert!(e.to_string().contains("mask_style must be"), "{e}");
}

#[test]
fn enrich_adds_derived_and_looked_up_columns() {
    let input = batch(&[
        USER,
        r#"{"op":"update","database":"shop","table":"users","primary_key":["id"],"before":{"id":9,"email":"z@Corp.example","name":"Z","phone":null,"country":"JP"},"after":{"id":9,"email":"z@Corp.example","name":"Z","phone":null,"country":"JP"}}"#,
    ]);
    let config = [
        ("domain_from", "email"),
        ("lookup_column", "country"),
        ("lookup_into", "country_name"),
        ("lookup.DE", "Germany"),
        ("lookup_default", "unknown"),
    ];
    let mut enrich = runner("enrich", &config, PluginLimits::default());
    let out = enrich.transform(input);
    assert_eq!(after(&out, 0, 0, "email_domain"), str("example.com"));
    assert_eq!(after(&out, 0, 0, "country_name"), str("Germany"));
    assert_eq!(after(&out, 1, 0, "country_name"), str("unknown"));
    let first = out.outputs[0].as_ref().unwrap()[0].schema.clone().unwrap();
    let update = &out.outputs[1].as_ref().unwrap()[0];
    assert!(
        std::sync::Arc::ptr_eq(&first, update.schema.as_ref().unwrap()),
        "one derived schema shared by both records"
    );
    let names: Vec<&str> = first.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "email", "name", "phone", "country", "email_domain", "country_name"]);
    assert_eq!(update.before.as_ref().unwrap().len(), 7);
    assert_eq!(update.before.as_ref().unwrap()[6], Value::Null);
}

#[test]
fn route_picks_fans_out_and_drops_by_column_value() {
    let row = |id: u32, country: &str| {
        format!(r#"{{"op":"insert","database":"shop","table":"orders","after":{{"id":{id},"country":"{country}"}}}}"#)
    };
    let lines = [row(1, "DE"), row(2, "US"), row(3, "test"), row(4, "BR")];
    let input = batch(&lines.iter().map(String::as_str).collect::<Vec<_>>());
    let config = [
        ("column", "country"),
        ("routes.DE", "orders.eu"),
        ("routes.US", "orders.us,orders.audit"),
        ("drop", "test"),
    ];
    let mut route = runner("route", &config, PluginLimits::default());
    let out = route.transform(input);
    let destinations: Vec<Vec<Option<String>>> = out
        .outputs
        .iter()
        .map(|o| o.as_ref().unwrap().iter().map(|r| r.destination.clone()).collect())
        .collect();
    assert_eq!(
        destinations,
        vec![
            vec![Some("orders.eu".to_owned())],
            vec![Some("orders.us".to_owned()), Some("orders.audit".to_owned())],
            vec![],
            vec![None],
        ]
    );
}

#[test]
fn a_plugin_written_as_one_annotated_function_runs_as_a_component() {
    let input = batch(&[
        USER,
        r#"{"op":"delete","database":"shop","table":"users","primary_key":["id"],"before":{"id":1}}"#,
        r#"{"op":"update","database":"shop","table":"users","primary_key":["id"],"before":{"id":1},"after":{"id":1}}"#,
    ]);
    let mut skip = runner("skip_deletes", &[], PluginLimits::default());
    let out = skip.transform(input);
    let passed: Vec<usize> = out
        .outputs
        .iter()
        .map(|o| o.as_ref().map_or(usize::MAX, |records| records.len()))
        .collect();
    assert_eq!(passed, [1, 0, 1], "the delete is dropped, the insert and update pass");
}
