//! Faults inside a plugin become per-record failures; the pipeline goes on.
use std::time::{Duration, Instant};

use sluice::plugin::{FailureKind, PluginEngine, PluginHost, PluginLimits, PluginVersion};
use sluice::record::Record;
use sluice_tests::{batch, engine, runner};

fn actions(actions: &[&str]) -> Vec<Record> {
    let lines: Vec<String> = actions
        .iter()
        .enumerate()
        .map(|(i, a)| format!(r#"{{"op":"insert","database":"t","table":"jobs","after":{{"id":{i},"action":"{a}"}}}}"#))
        .collect();
    batch(&lines.iter().map(String::as_str).collect::<Vec<_>>())
}

fn limits(memory_mb: u32, batch_timeout_ms: u64) -> PluginLimits {
    PluginLimits { memory_mb, batch_timeout_ms }
}

/// Runs `input`, then checks the instance was replaced and serves normally.
fn assert_recovers(runner: &mut sluice::plugin::PluginRunner) {
    let out = runner.transform(actions(&["ok", "ok"]));
    assert!(out.outputs.iter().all(|o| o.as_ref().is_ok_and(|r| r.len() == 1)), "next batch runs normally: {:?}", out.outputs);
}

#[test]
fn an_endless_loop_is_stopped_by_the_time_budget() {
    let mut faulty = runner("faulty", &[], limits(64, 100));
    let started = Instant::now();
    let out = faulty.transform(actions(&["ok", "loop", "ok"]));
    let took = started.elapsed();
    let failure = &out.outputs[1].as_ref().unwrap_err().failure;
    assert_eq!(failure.kind, FailureKind::Timeout, "{failure}");
    assert!(failure.message.contains("100 ms"), "{failure}");
    assert!(out.outputs[0].is_ok() && out.outputs[2].is_ok(), "the good records of the batch still pass");
    // Isolating the bad record takes a few calls of at most 100 ms each; a
    // budget that did not stop the loop would never return at all.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_recovers(&mut faulty);
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
    host.load_file(&sluice_tests::plugin_path("faulty")).unwrap();
    let e = host.runner("faulty", vec![("init".into(), "fail".into())], PluginLimits::default()).unwrap_err();
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
    assert!(e.contains("sluice:plugin/host@0.1.0") && e.contains("rebuild it with the SDK for sluice:plugin/plugin@0.2.0"), "{e}");

    let core = wat::parse_str("(module)").unwrap();
    let e = PluginVersion::compile(engine, "core", &core).unwrap_err().to_string();
    assert!(e.contains("core wasm module, not a component"), "{e}");

    let e = PluginVersion::compile(engine, "text", b"hello world").unwrap_err().to_string();
    assert!(e.contains("not a WebAssembly component"), "{e}");

    let clean = std::fs::read(sluice_tests::plugin_path("clean")).unwrap();
    let e = PluginVersion::compile(engine, "half", &clean[..clean.len() / 2]).unwrap_err().to_string();
    assert!(e.contains("does not compile"), "{e}");
}
