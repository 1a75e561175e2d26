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
use sluice_plugin::bindings::sluice::plugin::types::{Batch, BatchResult, Output, Position, Range, Record, RecordError, Span, Value};

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
        let action_index = batch.schemas.first().and_then(|s| s.columns.iter().position(|c| c.name == "action"));
        let mut emitted = Batch { schemas: vec![], text: vec![], values: vec![], headers: vec![], records: vec![] };
        let mut outputs = Vec::new();
        let mut results = Vec::new();
        for record in &batch.records {
            let action = match (action_index, record.after) {
                (Some(i), Some(start)) => match batch.values[start as usize + i] {
                    Value::Str(s) => std::str::from_utf8(&batch.text[s.start as usize..(s.start + s.len) as usize]).unwrap_or(""),
                    _ => "",
                },
                _ => "",
            };
            match action {
                "loop" => spin(),
                "alloc" => hoard(),
                "panic" => panic!("faulty plugin panicked on purpose"),
                "fail" => results.push(Err(RecordError { message: "rejected on purpose".into() })),
                _ if OUTPUT.get() == "bad-schema" => {
                    emitted.records.push(Record {
                        schema: Some(9999),
                        before: None,
                        after: None,
                        key: None,
                        payload: None,
                        headers: Range { start: 0, count: 0 },
                        destination: None,
                        position: Position::Other(Span { start: 0, len: 0 }),
                        ..*record
                    });
                    outputs.push(Output::Emit(emitted.records.len() as u32 - 1));
                    results.push(Ok(Range { start: outputs.len() as u32 - 1, count: 1 }));
                }
                _ => {
                    outputs.push(Output::Keep);
                    results.push(Ok(Range { start: outputs.len() as u32 - 1, count: 1 }));
                }
            }
        }
        if OUTPUT.get() == "short" {
            results.pop();
        }
        BatchResult { emitted, outputs, results }
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
