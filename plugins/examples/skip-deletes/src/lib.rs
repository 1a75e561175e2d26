//! `skip_deletes`: passes every change but deletes, for a copy that keeps
//! every row ever written (an archive, an audit table). No config.
use sluice_plugin::prelude::*;

#[sluice_plugin::map]
fn skip_deletes(record: Record) -> Result<Out, Error> {
    Ok(if record.op() == Op::Delete { Out::Drop } else { record.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin::testing::{Changes, run};

    #[test]
    fn deletes_are_dropped_and_every_other_change_passes() {
        let columns = ["id"];
        let changes = Changes::default()
            .insert("shop", "users", &columns, vec![Value::Int(1)])
            .update("shop", "users", &columns, vec![Value::Int(1)], vec![Value::Int(2)])
            .delete("shop", "users", &columns, vec![Value::Int(2)])
            .build();
        let out = run::<SkipDeletes>(&[], changes);
        let passed: Vec<usize> = out.outputs.iter().map(|o| o.as_ref().unwrap().len()).collect();
        assert_eq!(passed, [1, 1, 0]);
    }
}
