//! The documentation says what the product does: every key the pipeline
//! file's parser accepts is in docs/pipeline-reference.md and every key
//! documented there is accepted; every relative link and anchor of the
//! README and docs/ leads somewhere.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sluice::pipeline::PipelineFile;
use sluice_testkit::repo_root;

/// A valid file per source kind, with a marker where each section's keys go.
const BINLOG: &str = r#"plugin_dir = "."
@TOP
[[pipeline]]
name = "p"
@PIPELINE
[pipeline.source]
type = "mysql-binlog"
url = "mysql://u@h/"
tables = ["a.b"]
server_id = 1
@SOURCE
[pipeline.source.tls]
ca = "x"
@TLS
[pipeline.sink]
type = "kafka"
brokers = "b"
@SINK
[pipeline.dead_letter]
topic = "d"
@DLQ
[[pipeline.plugins]]
name = "x"
@STEP
[pipeline.plugins.limits]
memory_mb = 1
@LIMITS
"#;

const POLL: &str = r#"plugin_dir = "."
[[pipeline]]
name = "p"
dead_letter = { topic = "d" }
sink = { type = "kafka", brokers = "b" }
[pipeline.source]
type = "mysql-poll"
url = "mysql://u@h/"
@SOURCE
[[pipeline.source.tables]]
table = "a.b"
id = "i"
@POLL_TABLE
"#;

const KAFKA: &str = r#"plugin_dir = "."
[[pipeline]]
name = "p"
dead_letter = { topic = "d" }
[pipeline.source]
type = "kafka"
brokers = "b"
topics = ["t"]
group = "g"
@SOURCE
[pipeline.sink]
type = "mysql"
url = "mysql://u@h/"
@SINK
"#;

/// Each section of the reference, the file and marker where its keys go,
/// and whether it is a tagged table (its `type` is read before its fields).
const SECTIONS: &[(&str, &str, &str, bool)] = &[
    ("## Top level", BINLOG, "@TOP", false),
    ("## `[[pipeline]]`", BINLOG, "@PIPELINE", false),
    ("## `source`, `type = \"mysql-binlog\"`", BINLOG, "@SOURCE", true),
    ("## `source`, `type = \"mysql-poll\"`", POLL, "@SOURCE", true),
    ("### `source.tables` entries", POLL, "@POLL_TABLE", false),
    ("## `source`, `type = \"kafka\"`", KAFKA, "@SOURCE", true),
    ("## `sink`, `type = \"kafka\"`", BINLOG, "@SINK", true),
    ("## `sink`, `type = \"mysql\"`", KAFKA, "@SINK", true),
    ("## `dead_letter`", BINLOG, "@DLQ", false),
    ("## `tls`", BINLOG, "@TLS", false),
    ("## `[[pipeline.plugins]]`", BINLOG, "@STEP", false),
    ("### `limits`", BINLOG, "@LIMITS", false),
];

/// The keys the parser accepts where `marker` is: it names them all when
/// it refuses an unknown one.
fn accepted_keys(base: &str, marker: &str, tagged: bool) -> BTreeSet<String> {
    let mut text = base.replace(marker, "zz_unknown_key = 1");
    for other in [
        "@TOP",
        "@PIPELINE",
        "@SOURCE",
        "@TLS",
        "@SINK",
        "@DLQ",
        "@STEP",
        "@LIMITS",
        "@POLL_TABLE",
    ] {
        text = text.replace(other, "");
    }
    let error = match PipelineFile::parse(&text, |_| None) {
        Ok(_) => panic!("{marker}: an unknown key was accepted"),
        Err(e) => e.to_string(),
    };
    let expected = error
        .split("expected one of ")
        .nth(1)
        .or_else(|| error.split("expected ").nth(1))
        .unwrap_or_else(|| panic!("{error}"));
    let mut keys: BTreeSet<String> = expected.split('`').skip(1).step_by(2).map(str::to_owned).collect();
    if tagged {
        keys.insert("type".into());
    }
    keys
}

/// The keys a section of the reference documents: the first column of its table.
fn documented_keys(reference: &str, heading: &str) -> BTreeSet<String> {
    let start = reference
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    let body = &reference[start + heading.len() + 2..];
    let end = body.find("\n#").unwrap_or(body.len());
    body[..end]
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(key, _)| key.to_owned()))
        .collect()
}

#[test]
fn every_key_the_parser_accepts_is_documented_and_no_other() {
    let reference = std::fs::read_to_string(repo_root().join("docs/pipeline-reference.md")).unwrap();
    for (heading, base, marker, tagged) in SECTIONS {
        let accepted = accepted_keys(base, marker, *tagged);
        let documented = documented_keys(&reference, heading);
        let undocumented: Vec<&String> = accepted.difference(&documented).collect();
        let unknown: Vec<&String> = documented.difference(&accepted).collect();
        assert!(undocumented.is_empty(), "{heading}: accepted but not documented: {undocumented:?}");
        assert!(unknown.is_empty(), "{heading}: documented but unknown to the parser: {unknown:?}");
    }
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut found = BTreeSet::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            let base = anchor(line.trim_start_matches('#'));
            // Repeated headings get -1, -2, …
            let mut name = base.clone();
            let mut n = 0;
            while !found.insert(name.clone()) {
                n += 1;
                name = format!("{base}-{n}");
            }
        }
    }
    found
}

/// `(target)` of every `[text](target)` outside code.
fn links(markdown: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let line = strip_inline_code(line);
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let target = &rest[at + 2..];
            let end = target.find(')').unwrap_or(target.len());
            out.push(target[..end].to_owned());
            rest = &target[end..];
        }
    }
    out
}

fn strip_inline_code(line: &str) -> String {
    line.split('`').step_by(2).collect::<Vec<_>>().join("")
}

fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md"), root.join("CHANGELOG.md"), root.join("CONTRIBUTING.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_leads_somewhere() {
    let root = repo_root();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", file.display()));
                continue;
            }
            if !fragment.is_empty() && target.extension().is_some_and(|x| x == "md") {
                let targets = anchors(&std::fs::read_to_string(&target).unwrap());
                if !targets.contains(fragment) {
                    broken.push(format!("{}: {link}: no heading with that anchor", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 20, "only {checked} links found: is the parser right?");
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    assert_eq!(anchor(" MySQL → Kafka"), "mysql--kafka");
    assert_eq!(anchor(" `source`, `type = \"mysql-binlog\"`"), "source-type--mysql-binlog");
    assert_eq!(
        anchor(" The WIT contract (`sluice:plugin@0.2.0`)"),
        "the-wit-contract-sluiceplugin020"
    );
}
