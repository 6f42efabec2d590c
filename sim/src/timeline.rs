//! A self-contained HTML timeline of one run: one lane per node coloured by role, crashes,
//! pauses, partitions, commit and applied indexes, message arrows, and the violation.
//!
//! The page is one file — HTML, CSS, JavaScript and the trace as embedded JSON — so it opens
//! from disk with no network access. The drawing is hand-written SVG (no charting library):
//! the script builds it from the embedded trace and redraws the visible window on zoom and
//! pan, drawing message arrows only when the window holds few enough of them.
//!
//! ```
//! use stepraft_sim::{run, timeline, SimConfig};
//!
//! let mut config = SimConfig::new(7);
//! config.duration_us = 200_000;
//! config.keep_trace = true;
//! let result = run(&config);
//! let trace = result.trace.as_deref().expect("kept");
//! let page = timeline::render_jsonl(trace, &result.outcome, "seed 7").expect("valid trace");
//! assert!(page.starts_with("<!DOCTYPE html>"));
//! ```

use serde::Serialize;
use serde_json::Value;

use crate::trace::TraceRecord;
use crate::world::Outcome;

const STYLE: &str = include_str!("timeline.css");
const SCRIPT: &str = include_str!("timeline.js");
/// Installed before the main script so that even its syntax errors are reported in the page.
const ERROR_HOOK: &str = r#"window.addEventListener("error", function (event) {
  var list = document.getElementById("errors");
  var item = document.createElement("li");
  item.textContent = event.message + " (line " + event.lineno + ")";
  list.appendChild(item);
  list.hidden = false;
  document.body.setAttribute("data-errors", String(list.children.length));
});"#;

/// How the run ended, as the page shows it.
#[derive(Serialize)]
struct PageOutcome {
    /// `passed`, `violated` or `panicked`.
    status: &'static str,
    /// The violated property (`panic` for a panic in the core).
    property: Option<String>,
    /// What the checker saw, or the panic message.
    detail: Option<String>,
    /// Whether the property is a safety property.
    safety: bool,
    /// When the run stopped: the violation's record, or else the last event.
    time_us: u64,
}

#[derive(Serialize)]
struct PageData<'a> {
    title: &'a str,
    outcome: PageOutcome,
    records: &'a [Value],
}

/// Renders the timeline of `records` (a full trace, oldest first) ending in `outcome`.
///
/// `title` heads the page (for example `seed 42 · 5 nodes`).
pub fn render(records: &[TraceRecord], outcome: &Outcome, title: &str) -> String {
    let values: Vec<Value> = records
        .iter()
        .map(|record| serde_json::to_value(record).expect("trace records serialize"))
        .collect();
    page(&values, outcome, title)
}

/// Renders the timeline of a JSONL trace, as `RunResult::trace` holds and `replay --trace`
/// writes it.
///
/// # Errors
/// If a non-empty line is not a JSON object.
pub fn render_jsonl(
    trace: &str,
    outcome: &Outcome,
    title: &str,
) -> Result<String, serde_json::Error> {
    let values = trace
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(serde_json::from_str::<serde_json::Map<String, Value>>)
        .map(|object| object.map(Value::Object))
        .collect::<Result<Vec<Value>, _>>()?;
    Ok(page(&values, outcome, title))
}

fn page(records: &[Value], outcome: &Outcome, title: &str) -> String {
    let data = PageData { title, outcome: page_outcome(records, outcome), records };
    let json = serde_json::to_string(&data).expect("page data serializes");
    let mut html = String::with_capacity(json.len() + STYLE.len() + SCRIPT.len() + 4096);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"generator\" content=\"stepraft-sim\">\n");
    html.push_str(&format!("<title>{} · stepraft timeline</title>\n", escape_html(title)));
    html.push_str("<style>\n");
    html.push_str(STYLE);
    html.push_str("</style>\n<script>\n");
    html.push_str(ERROR_HOOK);
    html.push_str("\n</script>\n</head>\n<body>\n");
    html.push_str("<ul id=\"errors\" hidden></ul>\n");
    html.push_str("<div id=\"app\"></div>\n");
    html.push_str("<script type=\"application/json\" id=\"trace-data\">");
    html.push_str(&escape_script_json(&json));
    html.push_str("</script>\n<script>\n");
    html.push_str(SCRIPT);
    html.push_str("\n</script>\n</body>\n</html>\n");
    html
}

fn page_outcome(records: &[Value], outcome: &Outcome) -> PageOutcome {
    let time_of = |record: &Value| record["time_us"].as_u64().unwrap_or(0);
    let violation_time = records.iter().rev().find(|record| record["event"] == "violation");
    let time_us = violation_time.or(records.last()).map_or(0, time_of);
    let (status, property, detail, safety) = match outcome {
        Outcome::Passed => ("passed", None, None, false),
        Outcome::Violated(violation) => (
            "violated",
            Some(violation.property.to_string()),
            Some(violation.detail.clone()),
            violation.property.is_safety(),
        ),
        Outcome::Panicked(message) => {
            ("panicked", Some("panic".to_string()), Some(message.clone()), true)
        }
    };
    PageOutcome { status, property, detail, safety, time_us }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// JSON inside a `<script>` element must not contain `</script>` or `<!--`: `<` only occurs
/// inside JSON strings, where `\u003c` means the same character.
fn escape_script_json(json: &str) -> String {
    json.replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{Property, Violation};
    use crate::trace::TraceEvent;

    fn records() -> Vec<TraceRecord> {
        vec![
            TraceRecord { time_us: 0, event: TraceEvent::Phase { phase: "safety" } },
            TraceRecord {
                time_us: 5,
                event: TraceEvent::Violation {
                    property: "election safety".to_string(),
                    detail: "</script><script>alert(1)</script>".to_string(),
                },
            },
            TraceRecord { time_us: 9, event: TraceEvent::Heal },
        ]
    }

    #[test]
    fn embedded_text_cannot_close_the_script_element() {
        let outcome = Outcome::Violated(Violation {
            property: Property::ElectionSafety,
            detail: "<!-- </script>".to_string(),
        });
        let page = render(&records(), &outcome, "<b>seed</b>");
        assert_eq!(page.matches("</script>").count(), 3, "only the page's own scripts close");
        assert!(!page.contains("<!--"));
        assert!(page.contains("&lt;b&gt;seed&lt;/b&gt; · stepraft timeline"));
    }

    #[test]
    fn the_violation_time_is_that_of_the_violation_record() {
        let outcome = Outcome::Violated(Violation {
            property: Property::ElectionSafety,
            detail: "two leaders".to_string(),
        });
        let values: Vec<Value> =
            records().iter().map(|record| serde_json::to_value(record).expect("ok")).collect();
        let shown = page_outcome(&values, &outcome);
        assert_eq!((shown.status, shown.time_us, shown.safety), ("violated", 5, true));
        assert_eq!(page_outcome(&values[..1], &Outcome::Passed).time_us, 0);
    }

    #[test]
    fn a_jsonl_trace_renders_like_its_records() {
        let jsonl: String = records()
            .iter()
            .map(|record| serde_json::to_string(record).expect("ok") + "\n")
            .collect();
        let from_jsonl = render_jsonl(&jsonl, &Outcome::Passed, "t").expect("valid");
        assert_eq!(from_jsonl, render(&records(), &Outcome::Passed, "t"));
        assert!(render_jsonl("not json\n", &Outcome::Passed, "t").is_err());
    }
}
