//! `sluice status`: a running `sluice run`'s `/status`, as a table.
use std::io::Write;

use anyhow::Context;

use super::StatusArgs;
use crate::pipeline::PipelineFile;
use crate::telemetry::{HttpEndpoint, PipelineReport, StatusReport};

pub fn run(args: &StatusArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let address = match (&args.url, &args.config) {
        (Some(url), _) => address_of(url),
        (None, Some(config)) => {
            let file = PipelineFile::load(config)?;
            file.http
                .address()
                .with_context(|| format!("{}: `http = \"off\"`: its `sluice run` serves no status", config.display()))?
                .to_owned()
        }
        (None, None) => HttpEndpoint::DEFAULT.to_owned(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (code, body) = runtime
        .block_on(crate::telemetry::get(&address, "/status"))
        .with_context(|| format!("cannot read http://{address}/status (is `sluice run` running, with `http` at that address?)"))?;
    anyhow::ensure!(code == 200, "http://{address}/status answered {code}");
    if args.json {
        out.write_all(&body)?;
        writeln!(out)?;
        return Ok(0);
    }
    let report: StatusReport = serde_json::from_slice(&body).with_context(|| format!("http://{address}/status is not Sluice's status"))?;
    write_table(&report, out)?;
    Ok(0)
}

/// `HOST:PORT` of `--url`: `http://` and a trailing `/` dropped, a host
/// alone asked on the default port.
fn address_of(url: &str) -> String {
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    match address.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => address.to_owned(),
        _ => format!("{address}:{}", HttpEndpoint::DEFAULT.rsplit_once(':').expect("host:port").1),
    }
}

fn write_table(report: &StatusReport, out: &mut dyn Write) -> std::io::Result<()> {
    let header = ["PIPELINE", "STATE", "RATE/S", "LAG S", "WRITTEN", "DEAD", "POSITION", "PLUGINS"];
    let rows: Vec<[String; 8]> = report.pipelines.iter().map(row).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(&header.map(str::to_owned)))?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    for p in report.pipelines.iter().filter(|p| !p.ready) {
        writeln!(out, "{}: not ready: {}", p.name, p.reason.as_deref().unwrap_or("unknown"))?;
    }
    for p in &report.pipelines {
        for t in p.snapshot.iter().filter(|t| !t.finished) {
            writeln!(out, "{}: snapshot of {}: {} of about {} rows", p.name, t.table, t.rows, t.estimated)?;
        }
    }
    writeln!(
        out,
        "sluice {}, up {:.0} s, {}",
        report.version,
        report.uptime_s,
        if report.ready { "ready" } else { "not ready" }
    )
}

fn row(p: &PipelineReport) -> [String; 8] {
    let plugins: Vec<String> = p
        .plugins
        .iter()
        .map(|x| {
            format!(
                "{} {}{}",
                x.name,
                x.version,
                if x.refused.is_some() { " (newer refused)" } else { "" }
            )
        })
        .collect();
    [
        p.name.clone(),
        p.state.to_string(),
        format!("{:.1}", p.rate),
        format!("{:.1}", p.lag_seconds),
        p.records_written.to_string(),
        p.dead_lettered.to_string(),
        p.position.clone().unwrap_or_else(|| "-".into()),
        if plugins.is_empty() { "-".into() } else { plugins.join(", ") },
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_is_host_and_port_with_the_default_port_when_none_is_given() {
        assert_eq!(super::address_of("http://10.0.0.5:9500/"), "10.0.0.5:9500");
        assert_eq!(super::address_of("localhost"), "localhost:9464");
        assert_eq!(super::address_of("127.0.0.1:0"), "127.0.0.1:0");
        assert_eq!(super::address_of("[::1]"), "[::1]:9464");
    }
}
