//! Misbehaves on purpose, for the host's sandbox tests. It implements the WIT
//! export directly (not through `Transform`) so it can also break the ABI
//! contract. A record's `action` column picks the fault:
//! `loop` spins forever, `alloc` allocates without bound, `panic` panics
//! with a message, `overflow` recurses without end, `sleep` sleeps 5 s,
//! `count-flood` counts under 200,000 names, `log-flood` logs 8 MiB through
//! the host and 8 MiB to stderr, `fan-out` emits 100,000 copies of itself,
//! `fail` returns an error, `fail-echo` an error that quotes config `echo`
//! and holds control characters, `exit` calls `exit(3)`, `long-panic`
//! panics with a 6 KiB message, `count-max` adds u64::MAX to one counter
//! twice, `slow` spins for some 30 ms; anything else passes through.
//! Config `output = short` returns one result too few for the batch,
//! `output = bad-schema` emits records of a schema that does not exist,
//! `output = headerless` emits for each record a raw message with no header;
//! `init = fail` refuses to start, `init = sleep` sleeps 600 s in `init`,
//! `init = print` writes a line to stdout and one to stderr.
// Only meaningful as a wasm component.
#![cfg(target_arch = "wasm32")]

use std::cell::{Cell, RefCell};

use sluice_plugin::bindings::exports::sluice::plugin::transform::Guest;
use sluice_plugin::bindings::sluice::plugin::types::{Batch, BatchResult};

thread_local! {
    static OUTPUT: Cell<&'static str> = const { Cell::new("ok") };
    static ECHO: RefCell<String> = const { RefCell::new(String::new()) };
}

struct Faulty;

impl Guest for Faulty {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        for (k, v) in config {
            match (k.as_str(), v.as_str()) {
                ("init", "fail") => return Err("init refused on purpose".into()),
                ("init", "sleep") => std::thread::sleep(std::time::Duration::from_secs(600)),
                ("init", "print") => {
                    println!("hello from init on stdout");
                    eprintln!("hello from init on stderr");
                }
                ("echo", text) => ECHO.set(text.to_owned()),
                ("output", "short") => OUTPUT.set("short"),
                ("output", "bad-schema") => OUTPUT.set("bad-schema"),
                ("output", "headerless") => OUTPUT.set("headerless"),
                _ => {}
            }
        }
        Ok(())
    }

    fn transform(batch: Batch) -> BatchResult {
        const NONE32: u32 = u32::MAX;
        const NONE64: u64 = u64::MAX;
        let action_index = batch
            .schemas
            .first()
            .and_then(|s| s.columns.iter().position(|c| c.name == "action"));
        let mut emitted = sluice_plugin::rt::empty_batch();
        let (mut output_counts, mut outputs, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        for (r, &after) in batch.records.after.iter().enumerate() {
            // Kind 5 is str; its data is the span `start << 32 | len`.
            let action = match (action_index, after) {
                (Some(i), start) if start != NONE32 && batch.values.kinds[start as usize + i] == 5 => {
                    let span = batch.values.data[start as usize + i];
                    let (at, len) = ((span >> 32) as usize, span as u32 as usize);
                    std::str::from_utf8(&batch.text[at..at + len]).unwrap_or("")
                }
                _ => "",
            };
            match action {
                "loop" => spin(),
                "alloc" => hoard(),
                "panic" => panic!("faulty plugin panicked on purpose"),
                "long-panic" => panic!("the start of a long panic {}", "y".repeat(6 * 1024)),
                "exit" => std::process::exit(3),
                "overflow" => {
                    std::hint::black_box(recurse(0));
                }
                // Side effects, then the record passes through.
                "sleep" | "count-flood" | "log-flood" | "count-max" | "slow" => {
                    match action {
                        "count-max" => (0..2).for_each(|_| sluice_plugin::count("big", u64::MAX)),
                        "slow" => spin_for(30_000_000),
                        "sleep" => std::thread::sleep(std::time::Duration::from_secs(5)),
                        "count-flood" => (0..200_000).for_each(|n| sluice_plugin::count(&format!("flood-{n}"), 1)),
                        _ => {
                            let line = "x".repeat(1 << 20);
                            (0..8).for_each(|_| sluice_plugin::log::info(&line));
                            (0..8).for_each(|_| eprintln!("{line}"));
                        }
                    }
                    outputs.push(NONE32);
                    output_counts.push(1);
                }
                "fan-out" => {
                    let copies = 100_000;
                    outputs.extend(std::iter::repeat_n(NONE32, copies));
                    output_counts.push(copies as u32);
                    continue;
                }
                "fail" => {
                    errors.push("rejected on purpose".to_owned());
                    output_counts.push(NONE32);
                }
                "fail-echo" => {
                    errors.push(ECHO.with_borrow(|echo| format!("rejected \x1b[31m{echo}\r\nsecond line")));
                    output_counts.push(NONE32);
                }
                _ if matches!(OUTPUT.get(), "bad-schema" | "headerless") => {
                    let out = &mut emitted.records;
                    outputs.push(out.ops.len() as u32);
                    out.ops.push(if OUTPUT.get() == "headerless" { 4 } else { batch.records.ops[r] });
                    out.ts_ms.push(batch.records.ts_ms[r]);
                    out.schemas.push(if OUTPUT.get() == "headerless" { NONE32 } else { 9999 });
                    out.before.push(NONE32);
                    out.after.push(NONE32);
                    out.keys.push(NONE64);
                    out.payloads.push(NONE64);
                    out.headers.push(0);
                    out.destinations.push(NONE64);
                    out.position_kinds.push(2);
                    out.positions.extend([0, 0, 0, 0]);
                    output_counts.push(1);
                }
                _ => {
                    outputs.push(NONE32);
                    output_counts.push(1);
                }
            }
        }
        if OUTPUT.get() == "short" {
            output_counts.pop();
        }
        let destinations = vec![NONE64; outputs.len()];
        BatchResult {
            emitted,
            output_counts,
            outputs,
            destinations,
            errors,
        }
    }
}

fn spin_for(iterations: u64) {
    let mut n = 0u64;
    for _ in 0..iterations {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Recurses until the stack runs out; each frame keeps a buffer in memory.
#[allow(unconditional_recursion, reason = "running out of stack is the point")]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    recurse(depth + 1) + frame[0]
}

fn hoard() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

sluice_plugin::bindings::__export_plugin_world!(Faulty with_types_in sluice_plugin::bindings);
