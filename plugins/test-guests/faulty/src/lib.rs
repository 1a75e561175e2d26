//! Misbehaves on purpose, for the host's sandbox tests. It implements the WIT
//! export directly (not through `Transform`) so it can also break the ABI
//! contract. A record's `action` column picks the fault:
//! `loop` spins forever, `alloc` allocates without bound, `panic` panics,
//! `fail` returns an error; anything else passes through.
//! Config `output = short` returns one result too few for the batch,
//! `output = bad-schema` emits records of a schema that does not exist;
//! `init = fail` refuses to start.
// Only meaningful as a wasm component.
#![cfg(target_arch = "wasm32")]

use std::cell::Cell;

use sluice_plugin::bindings::exports::sluice::plugin::transform::Guest;
use sluice_plugin::bindings::sluice::plugin::types::{Batch, BatchResult};

thread_local! {
    static OUTPUT: Cell<&'static str> = const { Cell::new("ok") };
}

struct Faulty;

impl Guest for Faulty {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        for (k, v) in config {
            match (k.as_str(), v.as_str()) {
                ("init", "fail") => return Err("init refused on purpose".into()),
                ("output", "short") => OUTPUT.set("short"),
                ("output", "bad-schema") => OUTPUT.set("bad-schema"),
                _ => {}
            }
        }
        Ok(())
    }

    fn transform(batch: Batch) -> BatchResult {
        const NONE32: u32 = u32::MAX;
        const NONE64: u64 = u64::MAX;
        let action_index = batch.schemas.first().and_then(|s| s.columns.iter().position(|c| c.name == "action"));
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
                "fail" => {
                    errors.push("rejected on purpose".to_owned());
                    output_counts.push(NONE32);
                }
                _ if OUTPUT.get() == "bad-schema" => {
                    let out = &mut emitted.records;
                    outputs.push(out.ops.len() as u32);
                    out.ops.push(batch.records.ops[r]);
                    out.ts_ms.push(batch.records.ts_ms[r]);
                    out.schemas.push(9999);
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
        BatchResult { emitted, output_counts, outputs, destinations, errors }
    }
}

fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn hoard() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

sluice_plugin::bindings::__export_plugin_world!(Faulty with_types_in sluice_plugin::bindings);
