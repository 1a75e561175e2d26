//! Replacing a `.wasm` in the watched directory swaps versions between
//! batches: nothing lost, duplicated or half-processed; broken files refused.
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::{Duration, Instant};

use sluice::plugin::{PluginHost, PluginLimits, PluginRunner, PluginWatcher, ReloadEvent, content_hash};
use sluice::record::{Record, Value};
use sluice_testkit::with_custom_section;
use sluice_testkit::{batch, engine, plugin_path};

fn numbered(from: usize, n: usize) -> Vec<Record> {
    let lines: Vec<String> = (from..from + n)
        .map(|i| format!(r#"{{"op":"insert","database":"d","table":"t","after":{{"id":{i}}}}}"#))
        .collect();
    batch(&lines.iter().map(String::as_str).collect::<Vec<_>>())
}

fn watched(initial: &[u8]) -> (tempfile::TempDir, std::sync::Arc<PluginHost>, PluginWatcher, PluginRunner) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("live.wasm"), initial).unwrap();
    let host = PluginHost::open(engine(), dir.path()).unwrap();
    let watcher = PluginWatcher::start(host.clone()).unwrap();
    let runner = host.runner("live", vec![], PluginLimits::default()).unwrap();
    (dir, host, watcher, runner)
}

fn next_event(events: &Receiver<ReloadEvent>) -> ReloadEvent {
    events.recv_timeout(Duration::from_secs(10)).expect("a reload event within 10 s")
}

fn replace_atomically(dir: &Path, bytes: &[u8]) {
    let staged = dir.join(".live.wasm.partial");
    std::fs::write(&staged, bytes).unwrap();
    std::fs::rename(staged, dir.join("live.wasm")).unwrap();
}

#[test]
fn twenty_reloads_under_load_process_every_record_once_by_one_version() {
    let passthrough = std::fs::read(plugin_path("passthrough")).unwrap();
    let marker = std::fs::read(plugin_path("marker")).unwrap();
    // 21 distinct builds: even ones add a `marker` header, odd ones do not.
    let versions: Vec<Vec<u8>> = (0..=20)
        .map(|i| with_custom_section(if i % 2 == 0 { &marker } else { &passthrough }, &format!("v{i}")))
        .collect();
    let marks: HashMap<String, bool> = versions.iter().enumerate().map(|(i, v)| (content_hash(v), i % 2 == 0)).collect();
    let (dir, host, _watcher, mut runner) = watched(&versions[0]);
    let events = host.subscribe();

    let path = dir.path().to_owned();
    let later = versions[1..].to_vec();
    let writer = thread::spawn(move || {
        for (i, bytes) in later.iter().enumerate() {
            // Half the replacements are editor-style renames, half in-place rewrites.
            if i % 2 == 0 {
                replace_atomically(&path, bytes);
            } else {
                std::fs::write(path.join("live.wasm"), bytes).unwrap();
            }
            // Each build gets loaded before the next is written (a faster writer
            // would only make the loader skip to the newest file, by design).
            let expected = content_hash(bytes);
            while !matches!(next_event(&events), ReloadEvent::Loaded { hash, .. } if hash == expected) {}
            thread::sleep(Duration::from_millis(30));
        }
    });

    let last = content_hash(versions.last().unwrap());
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut served = HashSet::new();
    let mut next_id = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(writer.is_finished() && served.contains(&last)) {
        assert!(Instant::now() < deadline, "the last version never served");
        let input = numbered(next_id, 50);
        next_id += 50;
        let out = runner.transform(input.clone());
        let marked = *marks.get(&out.version.hash).expect("a known version served");
        served.insert(out.version.hash.clone());
        for (i, output) in out.outputs.iter().enumerate() {
            let records = output
                .as_ref()
                .unwrap_or_else(|e| panic!("record failed during reload: {}", e.failure));
            assert_eq!(records.len(), 1);
            let record = &records[0];
            let Value::Int(id) = record.after.as_ref().unwrap()[0] else {
                panic!("id column")
            };
            assert_eq!(record.after, input[i].after, "record {id} unchanged");
            *seen.entry(id).or_default() += 1;
            let has_marker = record.headers.iter().any(|h| h.key == "marker");
            assert_eq!(
                has_marker, marked,
                "record {id} half-processed: version {} marked={marked}",
                out.version.hash
            );
        }
    }
    writer.join().unwrap();
    assert_eq!(seen.len(), next_id, "every record came out");
    assert!(seen.values().all(|&n| n == 1), "no record came out twice");
    assert_eq!(served.len(), versions.len(), "each of the 21 versions served batches");
}

#[test]
fn a_half_written_file_is_refused_and_the_old_version_keeps_serving() {
    let passthrough = std::fs::read(plugin_path("passthrough")).unwrap();
    let marker = std::fs::read(plugin_path("marker")).unwrap();
    let (dir, host, _watcher, mut runner) = watched(&passthrough);
    let events = host.subscribe();
    let old = runner.version().hash.clone();

    std::fs::write(dir.path().join("live.wasm"), &marker[..marker.len() / 2]).unwrap();
    match next_event(&events) {
        ReloadEvent::Refused { name, reason, .. } => {
            assert_eq!(name, "live");
            assert!(reason.contains("does not compile"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let out = runner.transform(numbered(0, 3));
    assert_eq!(out.version.hash, old);
    assert!(out.outputs.iter().all(|o| o.as_ref().unwrap()[0].headers.is_empty()));

    // The writer finishes: the complete file loads.
    std::fs::write(dir.path().join("live.wasm"), &marker).unwrap();
    match next_event(&events) {
        ReloadEvent::Loaded { hash, previous, .. } => {
            assert_eq!(hash, content_hash(&marker));
            assert_eq!(previous.as_deref(), Some(old.as_str()));
        }
        other => panic!("expected a load, got {other:?}"),
    }
    let out = runner.transform(numbered(3, 1));
    assert_eq!(out.outputs[0].as_ref().unwrap()[0].headers[0].key, "marker");
}

#[test]
fn a_plugin_added_to_the_directory_becomes_available() {
    let passthrough = std::fs::read(plugin_path("passthrough")).unwrap();
    let (dir, host, _watcher, _runner) = watched(&passthrough);
    let events = host.subscribe();
    std::fs::copy(plugin_path("route"), dir.path().join("router.wasm")).unwrap();
    match next_event(&events) {
        ReloadEvent::Loaded { name, previous, .. } => assert_eq!((name.as_str(), previous), ("router", None)),
        other => panic!("expected a load, got {other:?}"),
    }
    let mut router = host
        .runner(
            "router",
            vec![("column".into(), "id".into()), ("routes.7".into(), "seven".into())],
            PluginLimits::default(),
        )
        .unwrap();
    let out = router.transform(numbered(7, 1));
    assert_eq!(out.outputs[0].as_ref().unwrap()[0].destination.as_deref(), Some("seven"));
}

#[test]
fn a_build_of_the_wrong_world_is_refused_and_removal_keeps_pipelines_running() {
    let passthrough = std::fs::read(plugin_path("passthrough")).unwrap();
    let (dir, host, _watcher, mut runner) = watched(&passthrough);
    let events = host.subscribe();
    let old = runner.version().hash.clone();

    replace_atomically(dir.path(), &wat::parse_str("(component)").unwrap());
    match next_event(&events) {
        ReloadEvent::Refused { reason, .. } => assert!(reason.contains("does not implement the world"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(runner.transform(numbered(0, 1)).version.hash, old);

    std::fs::remove_file(dir.path().join("live.wasm")).unwrap();
    assert!(matches!(next_event(&events), ReloadEvent::Removed { .. }));
    assert!(host.slot("live").is_none(), "new pipelines can no longer use it");
    assert!(
        runner.transform(numbered(1, 1)).outputs[0].is_ok(),
        "a running pipeline keeps its version"
    );
}
