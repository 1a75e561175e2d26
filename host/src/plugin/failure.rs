use crate::record::Record;
use crate::rejected::RecordFailure;

/// A record a plugin failed on, returned with the failure so nothing is lost:
/// it goes to the dead-letter queue as it entered the plugin.
#[derive(Debug, Clone)]
pub struct Failed {
    pub record: Record,
    pub failure: RecordFailure,
}
