use std::io::Write;
use std::time::Duration;

use anyhow::Context;

use super::VerifyArgs;
use crate::secret::Secret;
use crate::verify::{PipelineSource, TablePair, TableReport, VerifyError, VerifySettings, human, reemit, repair, verify_table};

/// `sluice verify`: compares tables between two MySQL servers; exit 0 when
/// they hold the same rows, 1 when anything differs (or cannot be decided).
/// With `--repair`, the target is made to match the source (through the
/// pipeline, when one is named), and compared again.
pub fn run(args: &VerifyArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    const BOTH_WAYS: &str = "compare a pipeline's tables with `sluice verify FILE --pipeline NAME [--target URL]`, \
                             or two servers with `sluice verify --source URL --target URL --tables DB.T,…`";
    let from_file = match (&args.file, &args.pipeline) {
        (Some(file), Some(name)) => Some(PipelineSource::load(file, name).with_context(|| file.display().to_string())?),
        (Some(_), None) => anyhow::bail!("a pipeline file needs --pipeline NAME: {BOTH_WAYS}"),
        (None, Some(_)) => anyhow::bail!("--pipeline names a pipeline of a file: give the FILE too; {BOTH_WAYS}"),
        (None, None) if args.source.is_none() || args.target.is_none() || args.tables.is_empty() => {
            anyhow::bail!("{BOTH_WAYS}")
        }
        (None, None) => None,
    };
    let source_url = match (&from_file, &args.source) {
        (Some(pipeline), _) => pipeline.url.clone(),
        (None, url) => secret(url.as_deref().expect("checked above")),
    };
    let target_url = args.target.as_deref().map(secret);
    let settings = VerifySettings {
        chunk_rows: args.chunk_rows.max(1),
        recheck: Duration::from_millis(args.recheck_ms),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let reports = runtime.block_on(async {
        let mut source = connect(&source_url, "source").await?;
        let (tables, target_url) = match &from_file {
            Some(pipeline) => {
                let pairs = pipeline.tables(&mut source, target_url.as_ref()).await?;
                let target = match target_url {
                    Some(url) => url,
                    None => one_target(&pairs)?,
                };
                (pairs.into_iter().map(|p| p.source).collect(), target)
            }
            None => (args.tables.clone(), target_url.expect("checked above")),
        };
        let mut target = connect(&target_url, "target").await?;
        for conn in [&mut source, &mut target] {
            // TIMESTAMP columns print in the session's zone: the same on both.
            mysql_async::prelude::Queryable::query_drop(conn, "SET time_zone = '+00:00'").await?;
        }
        let mut reports = Vec::new();
        for table in &tables {
            let (database, name) = table
                .split_once('.')
                .with_context(|| format!("--tables: `{table}` is not database.table"))?;
            // A table that cannot be compared is reported as such; the others still are.
            let mut report = match verify_table(&mut source, &mut target, database, name, settings).await {
                Err(VerifyError::Table { message, .. }) => TableReport::refused(table, message),
                other => other?,
            };
            if args.repair && report.whole_table_differs == Some(true) {
                writeln!(out, "{table}: not repaired: without a primary key no row can be named")?;
            } else if args.repair && report.refused.is_none() && !report.equal() {
                match &from_file {
                    Some(pipeline) => {
                        let pipeline = pipeline.pipeline();
                        let sent = reemit(&mut source, &mut target, pipeline, &report)
                            .await
                            .with_context(|| format!("{table}: repair through pipeline `{}`", pipeline.name))?;
                        writeln!(out, "{table}: sent {sent} row(s) again through pipeline `{}`", pipeline.name)?;
                        tracing::info!("verify: {table}: waiting up to {} s for the target to take them", REPAIR_WAIT.as_secs());
                        // The pipelines apply them: compare until equal, or give up.
                        let deadline = tokio::time::Instant::now() + REPAIR_WAIT;
                        loop {
                            report = verify_table(&mut source, &mut target, database, name, settings).await?;
                            if report.equal() || tokio::time::Instant::now() >= deadline {
                                break;
                            }
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        if !report.equal() {
                            writeln!(
                                out,
                                "{table}: the target still differs {} s later: the pipeline that applies `{}`'s topics is not running, \
                                 or its sink refused the rows (a conflict rule keeps a target row that is newer; see its dead-letter queue)",
                                REPAIR_WAIT.as_secs(),
                                pipeline.name
                            )?;
                        }
                    }
                    None => {
                        let changed = repair(&mut source, &mut target, &report)
                            .await
                            .with_context(|| format!("{table}: repair"))?;
                        writeln!(out, "{table}: repaired {changed} row(s) on the target")?;
                        report = verify_table(&mut source, &mut target, database, name, settings).await?;
                    }
                }
            }
            reports.push(report);
        }
        anyhow::Ok(reports)
    })?;
    if args.json {
        let equal = reports.iter().all(TableReport::equal);
        writeln!(out, "{}", serde_json::json!({ "equal": equal, "tables": reports }))?;
    } else {
        write!(out, "{}", human(&reports))?;
    }
    Ok(if reports.iter().all(TableReport::equal) { 0 } else { 1 })
}

/// The one server the pipeline's tables are written into.
fn one_target(pairs: &[TablePair]) -> anyhow::Result<Secret> {
    let mut urls = pairs.iter().filter_map(|p| p.target_url.as_ref());
    let first = urls
        .next()
        .context("no table of the pipeline is written to a MySQL server of the file")?;
    if urls.any(|url| url.expose() != first.expose()) {
        anyhow::bail!("the pipeline's tables are written to more than one server: give --target URL");
    }
    Ok(first.clone())
}

/// How long a repair through the pipeline is given to reach the target.
const REPAIR_WAIT: Duration = Duration::from_secs(60);

/// How long a server has to accept the connection: one that takes it and
/// never answers must not hold the comparison forever.
const CONNECT_WITHIN: Duration = Duration::from_secs(30);

async fn connect(url: &Secret, side: &str) -> anyhow::Result<mysql_async::Conn> {
    match tokio::time::timeout(CONNECT_WITHIN, crate::mysql::connect(url, None)).await {
        Ok(conn) => Ok(conn.context(side.to_owned())?),
        Err(_) => anyhow::bail!(
            "{side}: {} did not answer within {} s",
            crate::redact::redact(url.expose()),
            CONNECT_WITHIN.as_secs()
        ),
    }
}

/// A URL from the command line, its password masked from here on, even
/// when it is not written as a URL.
fn secret(url: &str) -> Secret {
    crate::redact::register_in_text(url);
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    if let Some((user, _)) = authority.rsplit_once('@')
        && let Some((_, password)) = user.split_once(':')
    {
        crate::redact::register(password);
    }
    Secret::new(url.to_owned())
}
