//! Faults inside a plugin become per-record failures; the pipeline goes on.
use std::time::{Duration, Instant};

use sluice::plugin::{FailureKind, PluginEngine, PluginHost, PluginLimits, PluginVersion};
use sluice::record::Record;
use sluice_testkit::{batch, engine, runner};

fn actions(actions: &[&str]) -> Vec<Record> {
    let lines: Vec<String> = actions
        .iter()
        .enumerate()
        .map(|(i, a)| format!(r#"{{"op":"insert","database":"t","table":"jobs","after":{{"id":{i},"action":"{a}"}}}}"#))
        .collect();
    batch(&lines.iter().map(String::as_str).collect::<Vec<_>>())
}

fn limits(memory_mb: u32, batch_timeout_ms: u64) -> PluginLimits {
    PluginLimits {
        memory_mb,
        batch_timeout_ms,
        ..PluginLimits::default()
    }
}

/// Runs `input`, then checks the instance was replaced and serves normally.
fn assert_recovers(runner: &mut sluice::plugin::PluginRunner) {
    let out = runner.transform(actions(&["ok", "ok"]));
    assert!(
        out.outputs.iter().all(|o| o.as_ref().is_ok_and(|r| r.len() == 1)),
        "next batch runs normally: {:?}",
        out.outputs
    );
}

/// Budgets for the timing tests: a batch's, and a record's run alone.
fn budgets(batch_timeout_ms: u64, record_timeout_ms: u64) -> PluginLimits {
    PluginLimits {
        batch_timeout_ms,
        record_timeout_ms,
        ..PluginLimits::default()
    }
}

/// The process's resident memory in MiB (Linux).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024.0
}

/// The failures of `out` by record, and that every other record passed.
fn only_these_failed(out: &sluice::plugin::BatchOutput, bad: &[usize]) {
    for (i, output) in out.outputs.iter().enumerate() {
        match (bad.contains(&i), output) {
            (true, Err(_)) | (false, Ok(_)) => {}
            (true, Ok(_)) => panic!("record {i} should have failed"),
            (false, Err(failed)) => panic!("good record {i} failed: {}", failed.failure),
        }
    }
}

#[test]
fn an_endless_loop_costs_its_batch_call_and_its_own_run_and_no_good_record_fails() {
    let mut faulty = runner("faulty", &[], budgets(500, 50));
    let started = Instant::now();
    let out = faulty.transform(actions(&["ok", "ok", "ok", "loop", "ok", "ok"]));
    let took = started.elapsed();
    let failure = &out.outputs[3].as_ref().unwrap_err().failure;
    assert_eq!(failure.kind, FailureKind::Timeout, "{failure}");
    assert_eq!(failure.message, "ran past its budget of 50 ms (limits.record_timeout_ms)");
    only_these_failed(&out, &[3]);
    eprintln!(
        "a loop in a batch held it {} ms (batch budget 500 ms, record budget 50 ms)",
        took.as_millis()
    );
    assert!(took < Duration::from_millis(1000), "held {took:?}, over twice the batch budget");
    assert_recovers(&mut faulty);
}

#[test]
fn two_loops_in_a_batch_of_200_fail_only_themselves() {
    let mut faulty = runner("faulty", &[], budgets(500, 50));
    let mut input = vec!["ok"; 200];
    input[17] = "loop";
    input[160] = "loop";
    let started = Instant::now();
    let out = faulty.transform(actions(&input));
    let took = started.elapsed();
    only_these_failed(&out, &[17, 160]);
    eprintln!(
        "two loops in 200 records held the batch {} ms (batch budget 500 ms, record budget 50 ms)",
        took.as_millis()
    );
    assert!(took < Duration::from_millis(1000), "held {took:?}, over twice the batch budget");
}

#[test]
fn sleeping_is_refused_at_once_in_transform_and_in_init() {
    let mut faulty = runner("faulty", &[], budgets(100, 50));
    let started = Instant::now();
    let out = faulty.transform(actions(&["ok", "sleep", "ok"]));
    let took = started.elapsed();
    let failure = &out.outputs[1].as_ref().unwrap_err().failure;
    assert_eq!(
        failure.message,
        "tried to sleep for 5000 ms; a plugin may not wait (its clocks stand still)"
    );
    only_these_failed(&out, &[1]);
    assert!(took < Duration::from_millis(200), "a 5 s sleep held the batch {took:?}");

    let host = PluginHost::new(engine());
    host.load_file(&sluice_testkit::plugin_path("faulty")).unwrap();
    let started = Instant::now();
    let e = host
        .runner("faulty", vec![("init".into(), "sleep".into())], budgets(100, 50))
        .unwrap_err()
        .to_string();
    assert!(e.contains("init failed: trap: tried to sleep for 600000 ms"), "{e}");
    assert!(started.elapsed() < Duration::from_millis(200), "init slept {:?}", started.elapsed());
}

#[test]
fn counter_names_are_bounded() {
    let mut faulty = runner(
        "faulty",
        &[],
        PluginLimits {
            max_counters: 50,
            ..PluginLimits::default()
        },
    );
    let before = rss_mib();
    let out = faulty.transform(actions(&["count-flood", "ok"]));
    only_these_failed(&out, &[]);
    let counters = faulty.counters();
    let counters = counters.lock().unwrap();
    eprintln!(
        "200,000 counter names: {} kept, host RSS {before:.0} -> {:.0} MiB",
        counters.len(),
        rss_mib()
    );
    assert_eq!(counters.len(), 51, "50 names and the one that counts the dropped");
    assert_eq!(counters["sluice.dropped-counts"], 200_000 - 50);
}

#[test]
fn a_log_flood_is_cut_to_the_budget_per_batch() {
    let logged = logged_by(|| {
        let mut faulty = runner(
            "faulty",
            &[],
            PluginLimits {
                log_bytes_per_batch: 64 * 1024,
                ..PluginLimits::default()
            },
        );
        let out = faulty.transform(actions(&["log-flood", "ok"]));
        only_these_failed(&out, &[]);
    })
    .len();
    eprintln!("16 MiB of plugin log in one batch: {logged} bytes reached the host's log");
    assert!(logged < 80 * 1024, "{logged} bytes logged for a 64 KiB budget");
}

#[test]
fn a_fan_out_past_the_cap_fails_its_record_alone() {
    let mut faulty = runner("faulty", &[], PluginLimits::default());
    let before = rss_mib();
    let out = faulty.transform(actions(&["ok", "fan-out", "ok", "fan-out", "ok"]));
    eprintln!(
        "two records fanning out to 100,000 copies each: host RSS {before:.0} -> {:.0} MiB",
        rss_mib()
    );
    only_these_failed(&out, &[1, 3]);
    let failure = &out.outputs[1].as_ref().unwrap_err().failure;
    assert_eq!(
        failure.message,
        "fanned out to 100000 outputs, over limits.max_outputs_per_record of 1000"
    );
    assert!(rss_mib() - before < 100.0, "the host built no records of the refused answer");
}

#[test]
fn a_stack_overflow_and_a_panic_read_as_what_they_are() {
    let mut faulty = runner("faulty", &[], PluginLimits::default());
    let out = faulty.transform(actions(&["ok", "overflow", "panic", "ok"]));
    only_these_failed(&out, &[1, 2]);
    let overflow = &out.outputs[1].as_ref().unwrap_err().failure;
    assert!(overflow.message.starts_with("stack overflow"), "{overflow}");
    let panic = &out.outputs[2].as_ref().unwrap_err().failure;
    assert!(
        panic.message.starts_with("panicked: faulty plugin panicked on purpose (") && panic.message.contains("src/lib.rs:"),
        "{panic}"
    );
    for failure in [overflow, panic] {
        assert!(
            failure.message.len() < 200 && !failure.message.contains("backtrace"),
            "short, without a backtrace: {failure}"
        );
    }
}

#[test]
fn allocating_past_the_memory_cap_is_stopped() {
    let mut faulty = runner("faulty", &[], limits(16, 5_000));
    let out = faulty.transform(actions(&["alloc"]));
    let failure = &out.outputs[0].as_ref().unwrap_err().failure;
    assert_eq!(failure.kind, FailureKind::OutOfMemory, "{failure}");
    assert!(failure.message.contains("cap of 16 MiB"), "{failure}");
    assert_recovers(&mut faulty);
}

#[test]
fn a_panic_fails_only_its_record_with_the_panic_message() {
    let mut faulty = runner("faulty", &[], PluginLimits::default());
    let out = faulty.transform(actions(&["ok", "ok", "panic", "ok", "fail"]));
    let failure = &out.outputs[2].as_ref().unwrap_err().failure;
    assert_eq!(failure.kind, FailureKind::Trap, "{failure}");
    assert!(failure.message.contains("panicked on purpose"), "{failure}");
    assert_eq!(out.outputs[4].as_ref().unwrap_err().failure.kind, FailureKind::Rejected);
    for i in [0, 1, 3] {
        assert_eq!(out.outputs[i].as_ref().unwrap().len(), 1, "record {i}");
    }
    assert_recovers(&mut faulty);
}

#[test]
fn output_that_breaks_the_contract_is_a_failure_not_a_crash() {
    let mut short = runner("faulty", &[("output", "short")], PluginLimits::default());
    let out = short.transform(actions(&["ok", "ok", "ok"]));
    for o in &out.outputs {
        let failure = &o.as_ref().unwrap_err().failure;
        assert_eq!(failure.kind, FailureKind::BadOutput);
        assert!(failure.message.contains("output counts for"), "{failure}");
    }
    let mut bad_schema = runner("faulty", &[("output", "bad-schema")], PluginLimits::default());
    let out = bad_schema.transform(actions(&["ok"]));
    let failure = &out.outputs[0].as_ref().unwrap_err().failure;
    assert_eq!(failure.kind, FailureKind::BadOutput);
    assert!(failure.message.contains("schema 9999"), "{failure}");
}

#[test]
fn a_plugin_whose_init_fails_is_refused_with_its_reason() {
    let host = PluginHost::new(engine());
    host.load_file(&sluice_testkit::plugin_path("faulty")).unwrap();
    let e = host
        .runner("faulty", vec![("init".into(), "fail".into())], PluginLimits::default())
        .unwrap_err();
    assert!(e.to_string().contains("init refused on purpose"), "{e}");
}

/// A valid component that exports something other than the Sluice world.
const OTHER_WORLD: &str = r#"(component
  (core module $m (func (export "hello") (result i32) i32.const 42))
  (core instance $i (instantiate $m))
  (func (export "hello") (result u32) (canon lift (core func $i "hello")))
)"#;

/// A plugin built for the first version of the WIT package: it imports that version's host.
const OLDER_WIT: &str = r#"(component
  (import "sluice:plugin/host@0.1.0" (instance (export "count" (func (param "name" string) (param "delta" u64)))))
)"#;

#[test]
fn components_that_do_not_match_the_world_are_refused_at_load() {
    let engine: &PluginEngine = &engine();
    let other = wat::parse_str(OTHER_WORLD).unwrap();
    let e = PluginVersion::compile(engine, "other", &other).unwrap_err().to_string();
    assert!(e.contains("does not implement the world sluice:plugin/plugin@0.2.0"), "{e}");

    let older = wat::parse_str(OLDER_WIT).unwrap();
    let e = PluginVersion::compile(engine, "older", &older).unwrap_err().to_string();
    assert!(
        e.contains("sluice:plugin/host@0.1.0") && e.contains("rebuild it with the SDK for sluice:plugin/plugin@0.2.0"),
        "{e}"
    );

    let core = wat::parse_str("(module)").unwrap();
    let e = PluginVersion::compile(engine, "core", &core).unwrap_err().to_string();
    assert!(e.contains("core wasm module, not a component"), "{e}");

    let e = PluginVersion::compile(engine, "text", b"hello world").unwrap_err().to_string();
    assert!(e.contains("not a WebAssembly component"), "{e}");

    let clean = std::fs::read(sluice_testkit::plugin_path("clean")).unwrap();
    let e = PluginVersion::compile(engine, "half", &clean[..clean.len() / 2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not compile"), "{e}");
}

#[test]
fn an_exit_a_long_panic_and_control_characters_read_as_one_short_line() {
    let mut faulty = runner("faulty", &[("echo", "quoted")], PluginLimits::default());
    let out = faulty.transform(actions(&["ok", "exit", "long-panic", "fail-echo", "ok"]));
    only_these_failed(&out, &[1, 2, 3]);
    let reason = |i: usize| out.outputs[i].as_ref().unwrap_err().failure.message.clone();
    // WASI preview 2's exit takes only success or failure: exit(3) arrives as 1.
    assert_eq!(reason(1), "called exit(1)");
    let panic = reason(2);
    assert!(panic.starts_with("panicked: the start of a long panic yyy"), "{panic}");
    assert!(panic.len() <= 1100, "a reason is at most 1 KiB and a note: {} bytes", panic.len());
    let echo = reason(3);
    assert_eq!(echo, "rejected \\u{1b}[31mquoted\\r\\nsecond line");
    for i in 1..=3 {
        assert!(!reason(i).chars().any(char::is_control), "{:?}", reason(i));
    }
}

#[test]
fn a_counter_saturates_instead_of_overflowing() {
    let mut faulty = runner("faulty", &[], PluginLimits::default());
    let out = faulty.transform(actions(&["count-max"]));
    only_these_failed(&out, &[]);
    assert_eq!(faulty.counters().lock().unwrap()["big"], u64::MAX);
}

/// What a test's plugin logs, at every level.
fn logged_by(run: impl FnOnce()) -> String {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Text(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Text {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let text = Text::default();
    let writer = text.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    String::from_utf8(text.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn a_batch_too_large_for_its_budget_is_named_once_though_no_record_fails() {
    let log = logged_by(|| {
        let mut faulty = runner("faulty", &[], budgets(300, 1_000));
        for _ in 0..2 {
            let out = faulty.transform(actions(&["slow"; 40]));
            only_these_failed(&out, &[]);
        }
    });
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("failed as a whole")).collect();
    assert_eq!(warnings.len(), 1, "one warning for two such batches:\n{log}");
    assert!(
        warnings[0].contains("limits.batch_timeout_ms 300 ms") && warnings[0].contains("each record passed alone"),
        "{}",
        warnings[0]
    );
}

#[test]
fn what_a_plugin_prints_in_init_reaches_the_log_as_whole_lines() {
    let log = logged_by(|| {
        runner("faulty", &[("init", "print")], PluginLimits::default());
    });
    assert!(log.contains("plugin stdout: hello from init on stdout"), "{log}");
    assert!(log.contains("plugin stderr: hello from init on stderr"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_prints_in_init_starts_from_inside_the_runtime() {
    let host = PluginHost::new(engine());
    host.load_file(&sluice_testkit::plugin_path("faulty")).unwrap();
    let mut config = toml::Table::new();
    config.insert("init".into(), "print".into());
    let step = sluice::pipeline::PluginStep {
        name: "faulty".into(),
        config,
        limits: PluginLimits::default(),
    };
    let chain = sluice::transforms::PluginChain::start(host, vec![step], &sluice::telemetry::PipelineTelemetry::detached("p")).await;
    assert!(chain.is_ok(), "{:?}", chain.err());
}
