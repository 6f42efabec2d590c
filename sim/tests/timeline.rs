//! The HTML timeline in a real headless browser (Debian's chromium): the page's script runs
//! without errors, draws one lane per node, and marks the violation.
//!
//! Needs `chromium`: when it is missing, the test installs Debian's package with apt-get
//! (through `sudo -n` when not root). Set `CHROMIUM` to use another binary.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stepraft_sim::trace::{MessageSummary, TraceEvent, TraceRecord};
use stepraft_sim::{run, timeline, Outcome, Property, SimConfig, Violation};

/// How long one page may take to load and run its script.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(30);

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    // Installed at most once per test process, whichever test asks first.
    static INSTALLED: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let found = INSTALLED.get_or_init(|| {
        find_chromium().or_else(|| {
            install_chromium();
            find_chromium()
        })
    });
    match found {
        Some(path) => path.clone(),
        None => panic!(
            "chromium is not installed and could not be installed with apt-get, and this test \
             loads the timeline in a real browser: install it with `sudo apt-get install -y \
             chromium` (Debian) or point CHROMIUM at a Chromium binary"
        ),
    }
}

fn find_chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|candidate| candidate.exists())
}

/// Installs Debian's chromium with apt-get (through sudo when not root), so that the test
/// command passes on a fresh machine; a machine without apt-get fails with the message above.
fn install_chromium() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0");
    let apt = |arguments: &[&str]| {
        let mut command = if is_root { Command::new("apt-get") } else { Command::new("sudo") };
        if !is_root {
            command.args(["-n", "apt-get"]);
        }
        eprintln!("installing chromium for the timeline test: apt-get {}", arguments.join(" "));
        command
            .args(arguments)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !apt(&["install", "-y", "-qq", "chromium"]) {
        apt(&["update", "-qq"]);
        apt(&["install", "-y", "-qq", "chromium"]);
    }
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("stepraft-timeline-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// Loads `page` in headless chromium and returns the DOM after its scripts ran.
fn dom_after_scripts(name: &str, page: &str) -> String {
    let scratch = Scratch::new(name);
    let file = scratch.0.join("timeline.html");
    std::fs::write(&file, page).expect("page written");
    let profile = scratch.0.join("profile");
    // Without the background-networking flags chromium waits on refused connections.
    let browser = chromium();
    let mut child = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--window-size=1400,900")
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot start {}: {error}; install Debian's chromium with \
                 `sudo apt-get install -y chromium` (`.ci/run` does this when it is missing)",
                browser.display()
            )
        });
    let started = Instant::now();
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut dom).expect("chromium writes UTF-8");
        dom
    });
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            child.kill().ok();
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().expect("reader")
}

/// Asserts the page's script finished without a JavaScript error, and returns what it drew:
/// the DOM from the body tag to the embedded data (leaving out the scripts' own text).
fn drawn_after_script_ran(dom: &str) -> &str {
    let start = dom.find("<body").expect("a body");
    let end = dom.find(r#"<script type="application/json""#).expect("the embedded trace");
    let (body_tag, drawn) =
        (&dom[start..start + dom[start..].find('>').expect("tag")], &dom[start..end]);
    let excerpt = &drawn[..drawn.len().min(2000)];
    assert!(body_tag.contains(r#"data-ready="1""#), "the script did not finish: {excerpt}");
    assert!(!body_tag.contains("data-errors="), "JavaScript errors: {excerpt}");
    assert!(drawn.contains(r#"<ul id="errors" hidden="">"#), "error list shown: {excerpt}");
    drawn
}

fn lanes(dom: &str) -> Vec<u64> {
    dom.match_indices(r#"<g class="lane" data-node=""#)
        .map(|(at, needle)| {
            let rest = &dom[at + needle.len()..];
            rest[..rest.find('"').expect("closing quote")].parse().expect("node id")
        })
        .collect()
}

#[test]
fn a_failing_run_renders_one_lane_per_node_and_marks_the_violation() {
    // A genuine failure: faults for half a second, then 1 ms to recover, which a cluster that
    // lost its leader cannot do (the first such seed).
    let result = (0..50)
        .map(|seed| {
            let mut config = SimConfig::new(seed);
            config.duration_us = 500_000;
            config.liveness_bound_us = 1_000;
            config.overrides.membership = Some(false); // five nodes, no spares
            config.keep_trace = true;
            run(&config)
        })
        .find(|result| result.outcome != Outcome::Passed)
        .expect("some seed cannot recover in 1 ms");
    let Outcome::Violated(violation) = &result.outcome else {
        panic!("expected a liveness failure, got {:?}", result.outcome)
    };
    assert_eq!(violation.property, Property::Liveness);
    let trace = result.trace.as_deref().expect("trace kept");
    let title = format!("seed {}", result.seed);
    let page = timeline::render_jsonl(trace, &result.outcome, &title).expect("valid trace");

    let dom = dom_after_scripts("failing", &page);
    let dom = drawn_after_script_ran(&dom);
    assert_eq!(lanes(dom), vec![1, 2, 3, 4, 5], "one lane per node");
    assert!(dom.contains(r#"class="violation-marker event""#), "no violation marker");
    assert!(dom.contains(r#"class="badge violated""#));
    assert!(dom.contains("⚠ liveness"), "property not shown");
}

fn message(kind: &'static str, term: u64) -> MessageSummary {
    MessageSummary { kind, term, index: 0, entries: 0, ok: true }
}

fn at(time_us: u64, event: TraceEvent) -> TraceRecord {
    TraceRecord { time_us, event }
}

/// A small hand-written trace: two leaders in one term, which the page must flag.
fn two_leaders() -> Vec<TraceRecord> {
    let vote = |from, to, sent_us| TraceEvent::Deliver {
        from,
        to,
        message: message("RequestVote", 2),
        sent_us,
    };
    let role = |node, role, term| TraceEvent::Role { node, role, term, leader: None };
    vec![
        at(0, TraceEvent::Phase { phase: "safety" }),
        at(
            1_000,
            TraceEvent::Partition { kind: "split", cuts: vec![(1, 3), (3, 1), (2, 3), (3, 2)] },
        ),
        at(10_000, role(1, "candidate", 2)),
        at(10_500, vote(1, 2, 10_000)),
        at(
            10_600,
            TraceEvent::Drop {
                from: 1,
                to: 3,
                message: message("RequestVote", 2),
                reason: "partition",
                sent_us: 10_000,
            },
        ),
        at(11_000, role(1, "leader", 2)),
        at(12_000, TraceEvent::Crash { node: 2, mid_step: false }),
        at(15_000, role(3, "leader", 2)),
        at(16_000, TraceEvent::Commit { node: 1, index: 1 }),
        at(16_000, TraceEvent::Apply { node: 1, index: 1 }),
        at(
            16_000,
            TraceEvent::Violation {
                property: "election safety".to_string(),
                detail: "n1 and n3 both lead term 2".to_string(),
            },
        ),
    ]
}

#[test]
fn a_safety_violation_marks_the_nodes_it_names_and_draws_every_message() {
    let outcome = Outcome::Violated(Violation {
        property: Property::ElectionSafety,
        detail: "n1 and n3 both lead term 2".to_string(),
    });
    let page = timeline::render(&two_leaders(), &outcome, "two leaders");

    let dom = dom_after_scripts("two-leaders", &page);
    let dom = drawn_after_script_ran(&dom);
    assert_eq!(lanes(dom), vec![1, 2, 3]);
    assert!(dom.contains(r#"data-time-us="16000""#), "violation not at its record's time");
    assert_eq!(dom.matches(r#"class="lane-label suspect""#).count(), 2, "n1 and n3 flagged");
    assert_eq!(dom.matches(r#"class="arrow""#).count(), 2, "the delivered and the lost vote");
    assert_eq!(dom.matches("marker crash").count(), 1);
    assert!(dom.contains("partition split: {n1,n2} | {n3}"), "partition sides not shown");
}

// Runs the `stepraft-sim` binary, which needs the `cli` feature.
#[cfg(feature = "cli")]
#[test]
fn replay_html_and_run_report_write_self_contained_pages() {
    let scratch = Scratch::new("cli");
    let (html, report) = (scratch.0.join("timeline.html"), scratch.0.join("report.html"));
    let sim = env!("CARGO_BIN_EXE_stepraft-sim");
    let replay = Command::new(sim)
        .args(["replay", "--seed", "5", "--duration", "1", "--html"])
        .arg(&html)
        .output()
        .expect("runs");
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let page = std::fs::read_to_string(&html).expect("timeline written");
    assert!(page.contains(r#"<script type="application/json" id="trace-data">"#));
    assert!(page.contains(r#""event":"deliver""#) && page.contains(r#""sent_us":"#));
    let run = Command::new(sim)
        .args(["run", "--seeds", "4", "--duration", "1", "--json", "--report"])
        .arg(&report)
        .output()
        .expect("runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let page = std::fs::read_to_string(&report).expect("report written");
    assert!(page.contains("Time to a new leader") && page.contains("Write latency"));
    assert_eq!(page.matches("<title>seed ").count(), 4, "one bar per seed");
    for page in [std::fs::read_to_string(&html).expect("read"), page] {
        // Self-contained: nothing is fetched (the SVG namespace is an identifier, not a fetch).
        let fetches = page.matches("src=\"http").count() + page.matches("href=\"http").count();
        assert_eq!(fetches, 0, "the page loads something from the network");
    }
}
