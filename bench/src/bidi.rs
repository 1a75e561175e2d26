//! `sluice-bench bidi`: two MariaDB sites kept equal through one Tansu, in
//! one run: each direction's rows/s with both directions loaded, beside the
//! same direction running alone; the site-to-site latency (commit at A to
//! commit at B) at 5,000 rows/s; and `sluice verify` on a large table
//! beside a bare `CHECKSUM TABLE` of it on both servers.
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use sluice::pipeline::PipelineFile;
use sluice::plugin::{PluginEngine, PluginHost};
use sluice::topology::run_pipeline;
use sluice::verify::{VerifySettings, one_scan_checksum_sql, verify_table};
use sluice_testkit::LocalStack;

#[derive(Debug, Args)]
pub struct BidiBenchArgs {
    /// Rows each site takes in a throughput round.
    #[arg(long, default_value_t = 200_000)]
    pub rows: usize,
    /// Rows of the table `sluice verify` compares.
    #[arg(long, default_value_t = 1_000_000)]
    pub verify_rows: usize,
}

const TABLE: &str = "(id BIGINT PRIMARY KEY, site CHAR(1) NOT NULL, name VARCHAR(64), amount DECIMAL(12,2), \
                     updated_at DATETIME(6) NOT NULL)";

pub fn run(args: &BidiBenchArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let a = LocalStack::start();
    let b = LocalStack::start_mysql_only();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args, &a, &b, out))
}

/// The two sites' servers and the broker.
struct Sites<'a> {
    a: &'a str,
    b: &'a str,
    brokers: &'a str,
}

async fn bench(args: &BidiBenchArgs, a: &LocalStack, b: &LocalStack, out: &mut dyn Write) -> anyhow::Result<i32> {
    let sites = Sites {
        a: a.mysql_url(),
        b: b.mysql_url(),
        brokers: a.kafka_brokers(),
    };
    let n = args.rows;
    writeln!(
        out,
        "bidirectional sync, two private MariaDB 10.11 and one Tansu (memory storage) on this machine; {n} rows per site per round"
    )?;
    let (alone_ab, _, busy_ab) = sites.round("r1", &["a-out", "b-in"], n, 0).await?;
    let (_, alone_ba, busy_ba) = sites.round("r2", &["b-out", "a-in"], 0, n).await?;
    let (both_ab, both_ba, busy_both) = sites.round("r3", &["a-out", "b-in", "b-out", "a-in"], n, n).await?;
    let line = |out: &mut dyn Write, what: &str, both: f64, alone: f64| {
        writeln!(
            out,
            "{what}: {both:>9.0} rows/s with both loaded, {alone:>9.0} rows/s alone: {:.2} (target >= 0.80)",
            both / alone
        )
    };
    line(out, "A -> B", both_ab, alone_ab)?;
    line(out, "B -> A", both_ba, alone_ba)?;
    writeln!(
        out,
        "both directions together: {:.0} rows/s, {:.2} of one direction alone; the machine's CPUs were busy {:.0}% (A -> B alone), {:.0}% (B -> A alone), {:.0}% (both)",
        both_ab + both_ba,
        (both_ab + both_ba) / alone_ab.max(alone_ba),
        busy_ab * 100.0,
        busy_ba * 100.0,
        busy_both * 100.0
    )?;
    let (p50, p99, max) = sites.latency().await?;
    writeln!(
        out,
        "site-to-site latency at 5,000 rows/s for {LATENCY_SECONDS} s (commit at A -> row written at B): p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms (target p99 < 500)"
    )?;
    let (verify, scan, checksum) = sites.verify(args.verify_rows).await?;
    writeln!(
        out,
        "sluice verify, {} rows equal on both: {verify:.2} s; one full scan hashing each row the same way, both servers at once: {scan:.2} s, {:.2}x (target <= 2); CHECKSUM TABLE (CRC32), both at once: {checksum:.2} s",
        args.verify_rows,
        verify / scan
    )?;
    Ok(0)
}

/// A file of the four pipelines of one round's table `shop.<table>`.
fn pipelines(sites: &Sites, state: &std::path::Path, table: &str, names: &[&str]) -> anyhow::Result<PipelineFile> {
    let mut text = format!("plugin_dir = {state:?}\nstate_dir = {state:?}\n");
    for name in names {
        let (site, other, url, server_id) = match *name {
            "a-out" | "a-in" => ("a", "b", sites.a, 9101),
            _ => ("b", "a", sites.b, 9102),
        };
        let brokers = sites.brokers;
        text.push_str(&if name.ends_with("-out") {
            format!(
                "[[pipeline]]\nname = \"{name}\"\nsite = \"{site}\"\n\
                 source = {{ type = \"mysql-binlog\", url = \"{url}\", tables = [\"shop.{table}\"], server_id = {server_id}, snapshot = \"never\" }}\n\
                 sink = {{ type = \"kafka\", brokers = \"{brokers}\", topic = \"{site}.{{database}}.{{table}}\" }}\n\
                 dead_letter = {{ topic = \"{site}.dlq\" }}\n"
            )
        } else {
            format!(
                "[[pipeline]]\nname = \"{name}\"\nsite = \"{site}\"\n\
                 source = {{ type = \"kafka\", brokers = \"{brokers}\", topics = [\"{other}.shop.{table}\"], group = \"{name}-{table}\" }}\n\
                 sink = {{ type = \"mysql\", url = \"{url}\", conflict = \"last-writer-wins\", version_column = \"updated_at\" }}\n\
                 dead_letter = {{ topic = \"{site}.dlq\" }}\n"
            )
        });
    }
    Ok(PipelineFile::parse(&text, |_| None)?)
}

/// Running pipelines, stopped on `stop`.
struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), sluice::topology::PipelineError>>>,
    _state: tempfile::TempDir,
}

impl Running {
    async fn start(sites: &Sites<'_>, table: &str, names: &[&str]) -> anyhow::Result<Self> {
        let state = tempfile::tempdir()?;
        let file = pipelines(sites, state.path(), table, names)?;
        let host = PluginHost::open(Arc::new(PluginEngine::new()?), &file.plugin_dir)?;
        let (stop, receiver) = watch::channel(false);
        let state_dir = file.state_dir.clone();
        let tasks = file
            .pipelines
            .into_iter()
            .map(|pipeline| {
                let (host, state_dir, stop) = (host.clone(), state_dir.clone(), receiver.clone());
                tokio::spawn(async move { run_pipeline(&pipeline, host, &state_dir, stop).await })
            })
            .collect();
        // A capture pipeline that starts with snapshot = "never" reads from
        // where the binlog is when it connects: nothing may be written before.
        let deadline = Instant::now() + Duration::from_secs(60);
        for name in names.iter().filter(|n| n.ends_with("-out")) {
            while !state.path().join(format!("{name}.position.json")).exists() {
                anyhow::ensure!(Instant::now() < deadline, "pipeline {name} stored no position within 60 s");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(Running {
            stop,
            tasks,
            _state: state,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.stop.send(true)?;
        for task in self.tasks {
            task.await??;
        }
        Ok(())
    }
}

async fn count(url: &str, table: &str) -> anyhow::Result<usize> {
    let mut db = Conn::from_url(url).await?;
    let n: Option<usize> = db.query_first(format!("SELECT COUNT(*) FROM shop.{table}")).await?;
    Ok(n.unwrap_or(0))
}

/// Waits until `table` on `url` holds `rows` rows; panics past two minutes.
async fn until_count(url: &str, table: &str, rows: usize) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if count(url, table).await? >= rows {
            return Ok(Instant::now());
        }
        anyhow::ensure!(Instant::now() < deadline, "shop.{table} did not reach {rows} rows within 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `rows` rows at a site, ids from `first`, in transactions of 1,000.
async fn load(url: &str, table: &str, site: &str, first: usize, rows: usize) -> anyhow::Result<()> {
    let mut db = Conn::from_url(url).await?;
    for start in (first..first + rows).step_by(1000) {
        let end = (start + 999).min(first + rows - 1);
        db.query_drop(format!(
            "INSERT INTO shop.{table} SELECT seq, '{site}', CONCAT('name ', seq), seq / 100, NOW(6) FROM shop.seq_{start}_to_{end}"
        ))
        .await?;
    }
    Ok(())
}

const LATENCY_SECONDS: u64 = 10;

/// The machine's CPU time so far, busy and all, in /proc/stat's ticks.
fn machine_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    let all: u64 = ticks.iter().take(8).sum();
    (all - idle, all)
}

/// The share of the machine's CPU time that was busy since `then`.
fn busy_since(then: (u64, u64)) -> f64 {
    let now = machine_cpu();
    (now.0 - then.0) as f64 / (now.1 - then.1).max(1) as f64
}

/// Seconds `sql` takes on both servers at once.
async fn both(a: &mut Conn, b: &mut Conn, sql: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    tokio::try_join!(a.query_drop(sql), b.query_drop(sql))?;
    Ok(started.elapsed().as_secs_f64())
}

impl Sites<'_> {
    async fn create(&self, table: &str, b_extra: &str) -> anyhow::Result<()> {
        for (url, extra) in [(self.a, ""), (self.b, b_extra)] {
            let mut db = Conn::from_url(url).await?;
            let columns = TABLE.trim_end_matches(')');
            db.query_drop(format!(
                "CREATE DATABASE IF NOT EXISTS shop; CREATE TABLE shop.{table} {columns}{extra})"
            ))
            .await?;
        }
        Ok(())
    }

    /// Until one row made at each loaded site has reached the other: the
    /// pipelines stream and the consumer groups have their partitions.
    async fn warm_up(&self, table: &str, at_a: bool, at_b: bool) -> anyhow::Result<()> {
        let id = 1_000_000_000;
        if at_a {
            load(self.a, table, "a", id, 1).await?;
            until_count(self.b, table, 1).await?;
        }
        if at_b {
            load(self.b, table, "b", id + 1, 1).await?;
            until_count(self.a, table, usize::from(at_a) + 1).await?;
        }
        Ok(())
    }

    /// One throughput round: `at_a` rows made at A and `at_b` at B at once;
    /// the rows/s each direction delivered them at, and how busy the
    /// machine's CPUs were meanwhile.
    async fn round(&self, table: &str, names: &[&str], at_a: usize, at_b: usize) -> anyhow::Result<(f64, f64, f64)> {
        self.create(table, "").await?;
        let running = Running::start(self, table, names).await?;
        self.warm_up(table, at_a > 0, at_b > 0).await?;
        let warm = usize::from(at_a > 0) + usize::from(at_b > 0);
        let started = Instant::now();
        let cpu = machine_cpu();
        let load_a = async {
            match at_a {
                0 => Ok(()),
                rows => load(self.a, table, "a", 1, rows).await,
            }
        };
        let load_b = async {
            match at_b {
                0 => Ok(()),
                rows => load(self.b, table, "b", at_a + 1, rows).await,
            }
        };
        let everything = at_a + at_b + warm;
        let (loads, arrivals) = tokio::join!(async { tokio::try_join!(load_a, load_b) }, async {
            tokio::try_join!(until_count(self.b, table, everything), until_count(self.a, table, everything))
        });
        loads?;
        let (at_b_done, at_a_done) = arrivals?;
        let busy = busy_since(cpu);
        running.stop().await?;
        let rate = |rows: usize, done: Instant| rows as f64 / done.duration_since(started).as_secs_f64();
        Ok((rate(at_a, at_b_done), rate(at_b, at_a_done), busy))
    }

    /// Commit at A to the row's write at B, at 5,000 rows/s (50 rows every
    /// 10 ms), all four pipelines running: B's table stamps each row it is
    /// given with its own clock (the same machine's).
    async fn latency(&self) -> anyhow::Result<(f64, f64, f64)> {
        let table = "live";
        self.create(table, ", arrived DATETIME(6) NOT NULL DEFAULT NOW(6)").await?;
        let running = Running::start(self, table, &["a-out", "b-in", "b-out", "a-in"]).await?;
        self.warm_up(table, true, false).await?;
        let mut db = Conn::from_url(self.a).await?;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let ticks = LATENCY_SECONDS * 100;
        for t in 0..ticks {
            tick.tick().await;
            let values: Vec<String> = (0..50).map(|i| format!("({}, 'a', 'live', 0, NOW(6))", t * 50 + i + 1)).collect();
            db.query_drop(format!("INSERT INTO shop.live VALUES {}", values.join(","))).await?;
        }
        until_count(self.b, table, ticks as usize * 50 + 1).await?;
        running.stop().await?;
        let mut at_b = Conn::from_url(self.b).await?;
        let mut ms: Vec<f64> = at_b
            .query::<i64, _>("SELECT TIMESTAMPDIFF(MICROSECOND, updated_at, arrived) FROM shop.live WHERE id < 1000000000")
            .await?
            .into_iter()
            .map(|us| us as f64 / 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q) as usize];
        Ok((at(0.5), at(0.99), at(1.0)))
    }

    /// `sluice verify` of a table equal on both servers; the same row hash
    /// over the whole table in one statement on each (the scan verify's
    /// chunks add up to); and CHECKSUM TABLE on each. Seconds, the servers
    /// working at once in each.
    async fn verify(&self, rows: usize) -> anyhow::Result<(f64, f64, f64)> {
        let table = "big";
        self.create(table, "").await?;
        tokio::try_join!(load(self.a, table, "x", 1, rows), load(self.b, table, "x", 1, rows))?;
        // The same rows, to the microsecond, on both.
        let mut a = Conn::from_url(self.a).await?;
        let mut b = Conn::from_url(self.b).await?;
        for db in [&mut a, &mut b] {
            db.query_drop("UPDATE shop.big SET updated_at = '2026-01-01 00:00:00.000001'")
                .await?;
        }
        let started = Instant::now();
        let settings = VerifySettings {
            chunk_rows: 1000,
            recheck: Duration::from_millis(500),
        };
        let report = verify_table(&mut a, &mut b, "shop", table, settings).await?;
        let verify = started.elapsed().as_secs_f64();
        anyhow::ensure!(report.equal(), "the servers differ: {} differing chunks", report.chunks_differing);
        let one_scan = one_scan_checksum_sql(&mut a, &mut b, "shop", table).await?;
        let scan = both(&mut a, &mut b, &one_scan).await?;
        let checksum = both(&mut a, &mut b, "CHECKSUM TABLE shop.big").await?;
        Ok((verify, scan, checksum))
    }
}
