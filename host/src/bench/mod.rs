//! Benchmarks that print our figure beside the raw limit measured in the same run.
pub mod cdc;
mod latency;
pub mod plugin;
mod python;
mod rows;
pub mod sink;
mod stack;

pub use stack::LocalStack;

pub use plugin::PluginBenchArgs;

/// The median of one figure over a benchmark's trials (at least one).
fn median<T>(trials: &[T], figure: impl Fn(&T) -> f64) -> f64 {
    let mut values: Vec<f64> = trials.iter().map(figure).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A copy of a component with a custom section appended: same behaviour,
/// different bytes (and so a different version hash). Reload tests and the
/// reload benchmark use it to make as many distinct versions as they need.
pub fn with_custom_section(component: &[u8], tag: &str) -> Vec<u8> {
    let name = b"sluice-variant";
    let mut body = leb128(name.len() as u64);
    body.extend_from_slice(name);
    body.extend_from_slice(tag.as_bytes());
    let mut out = component.to_vec();
    out.push(0); // custom section id
    out.extend(leb128(body.len() as u64));
    out.extend(body);
    out
}

fn leb128(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
