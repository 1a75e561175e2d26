//! Glue between the WIT exports and a [`Transform`]; used by `export!`.
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::arena::Writer;
use crate::bindings::sluice::plugin::types::{Batch, BatchResult, Range, RecordError};
use crate::record::Input;
use crate::{Config, Out, Record, Schemas, Transform};

pub fn init<T: Transform>(slot: &RefCell<Option<T>>, config: Vec<(String, String)>) -> Result<(), String> {
    let plugin = T::init(&Config::new(config)).map_err(|e| e.to_string())?;
    *slot.borrow_mut() = Some(plugin);
    Ok(())
}

pub fn transform<T: Transform>(slot: &RefCell<Option<T>>, batch: Batch) -> BatchResult {
    let mut slot = slot.borrow_mut();
    let Some(plugin) = slot.as_mut() else {
        let error = RecordError { message: "plugin used before init".into() };
        let results = batch.records.iter().map(|_| Err(error.clone())).collect();
        return BatchResult { emitted: Batch::default(), outputs: vec![], results };
    };
    run(plugin, batch)
}

thread_local! {
    static BATCHES: Cell<u64> = const { Cell::new(0) };
}

/// Runs `plugin` over a batch: also what [`crate::testing`] uses natively.
pub fn run<T: Transform>(plugin: &mut T, mut batch: Batch) -> BatchResult {
    let seq = BATCHES.replace(BATCHES.get() + 1);
    let schemas = Rc::new(RefCell::new(Schemas::new(std::mem::take(&mut batch.schemas))));
    let n = batch.records.len() as u32;
    let input = Rc::new(Input { batch, seq });
    let mut emitted = Writer::default();
    let mut outputs = Vec::with_capacity(n as usize);
    let results = (0..n)
        .map(|i| {
            let start = outputs.len() as u32;
            match plugin.transform(Record::new(&input, i, &schemas)) {
                Ok(Out::Drop) => {}
                Ok(Out::One(r)) => outputs.push(r.into_output(seq, i, &mut emitted)),
                Ok(Out::Many(rs)) => outputs.extend(rs.into_iter().map(|r| r.into_output(seq, i, &mut emitted))),
                Err(e) => return Err(RecordError { message: e.to_string() }),
            }
            Ok(Range { start, count: outputs.len() as u32 - start })
        })
        .collect();
    emitted.batch.schemas = schemas.borrow_mut().take_added();
    BatchResult { emitted: emitted.batch, outputs, results }
}
