//! Glue between the WIT exports and a [`Transform`]; used by `export!`.
use std::cell::{Cell, RefCell};
use std::rc::Rc;

pub use crate::arena::empty_batch;
use crate::arena::{NONE32, Writer};
use crate::bindings::sluice::plugin::types::{Batch, BatchResult};
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
        let n = batch.records.ops.len();
        let emitted = empty_batch();
        let errors = vec!["plugin used before init".to_owned(); n];
        return BatchResult {
            emitted,
            output_counts: vec![NONE32; n],
            outputs: vec![],
            destinations: vec![],
            errors,
        };
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
    let n = batch.records.ops.len() as u32;
    let input = Rc::new(Input { batch, seq });
    let mut emitted = Writer::default();
    let (mut outputs, mut destinations) = (Vec::with_capacity(n as usize), Vec::with_capacity(n as usize));
    let mut errors = Vec::new();
    let output_counts = (0..n)
        .map(|i| {
            let start = outputs.len();
            let mut answer = |r: Record| {
                let (output, destination) = r.into_output(seq, i, &mut emitted);
                outputs.push(output);
                destinations.push(destination);
            };
            match plugin.transform(Record::new(&input, i, &schemas)) {
                Ok(Out::Drop) => {}
                Ok(Out::One(r)) => answer(r),
                Ok(Out::Many(rs)) => rs.into_iter().for_each(answer),
                Err(e) => {
                    errors.push(e.to_string());
                    return NONE32;
                }
            }
            (outputs.len() - start) as u32
        })
        .collect();
    emitted.schemas = schemas.borrow_mut().take_added();
    BatchResult {
        emitted: emitted.into_batch(),
        output_counts,
        outputs,
        destinations,
        errors,
    }
}
