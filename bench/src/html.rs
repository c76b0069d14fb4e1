//! The HTML report: one self-contained page with the verdicts, the headline figures and four
//! SVG plots drawn with plotters — latency percentiles over time, the latency distribution
//! (HDR percentile plot), throughput against the schedule, and lag over time.

use plotters::prelude::*;

use crate::report::{format_ms, Report};

/// One line on a plot.
struct Line<'a> {
    name: &'a str,
    points: Vec<(f64, f64)>,
    color: RGBColor,
}

/// How a plot's y values are shown.
#[derive(Clone, Copy)]
enum Axis {
    Linear,
    /// Values are log10 of milliseconds; ticks show the milliseconds.
    LogMs,
    /// Values count nines (1 = 90%, 2 = 99%); ticks show the percentile.
    Nines,
}

impl Axis {
    fn label(self, v: f64) -> String {
        match self {
            Axis::Linear if v.abs() < 10.0 && v.fract() != 0.0 => format!("{v:.2}"),
            Axis::Linear => format!("{v:.0}"),
            Axis::LogMs => format_ms(10f64.powf(v)),
            Axis::Nines => format!("p{}", 100.0 - 100.0 * 10f64.powf(-v)),
        }
    }
}

const WIDTH: u32 = 900;
const HEIGHT: u32 = 340;

fn plot(
    title: &str,
    (x_desc, x_axis): (&str, Axis),
    (y_desc, axis): (&str, Axis),
    lines: &[Line],
) -> String {
    let mut svg = String::new();
    let points = || lines.iter().flat_map(|l| l.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points() {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return format!("<p>{title}: no data</p>");
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    if let Axis::Linear = axis {
        y0 = y0.min(0.0);
    }
    let pad = ((y1 - y0) * 0.08).max(0.05);
    let (y0, y1) = match axis {
        Axis::Linear => (y0, y1 + pad),
        Axis::LogMs | Axis::Nines => (y0 - pad, y1 + pad),
    };
    let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let format_x = |v: &f64| x_axis.label(*v);
        let format_y = |v: &f64| axis.label(*v);
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&format_x)
            .y_label_formatter(&format_y)
            .draw()?;
        for line in lines {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(line.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => svg,
        Err(e) => format!("<p>{title}: cannot draw: {e}</p>"),
    }
}

fn log_ms(ms: f64) -> f64 {
    ms.max(0.001).log10()
}

/// The page.
pub fn render(report: &Report) -> String {
    let timeline = &report.timeline;
    let series = |f: fn(&crate::runner::Sample) -> Option<f64>, log: bool| -> Vec<(f64, f64)> {
        timeline
            .iter()
            .filter_map(|s| f(s).map(|v| (s.t, if log { log_ms(v) } else { v })))
            .collect()
    };
    let over_time = plot(
        "Latency over time (intended send → published)",
        ("seconds", Axis::Linear),
        ("latency", Axis::LogMs),
        &[
            Line {
                name: "p50",
                points: series(|s| s.p50_ms, true),
                color: BLUE,
            },
            Line {
                name: "p99",
                points: series(|s| s.p99_ms, true),
                color: RGBColor(230, 120, 0),
            },
            Line {
                name: "p99.9",
                points: series(|s| s.p999_ms, true),
                color: RED,
            },
        ],
    );
    // The percentile distribution, x in nines so that 90% sits at 1 and 99% at 2.
    let distribution = plot(
        "Latency distribution",
        ("percentile", Axis::Nines),
        ("latency", Axis::LogMs),
        &[Line {
            name: "latency at percentile",
            points: report
                .latency_ms
                .percentiles
                .iter()
                .map(|&(p, ms)| (-(1.0 - p / 100.0).max(1e-9).log10(), log_ms(ms)))
                .collect(),
            color: BLUE,
        }],
    );
    let throughput = plot(
        "Throughput",
        ("seconds", Axis::Linear),
        ("records/s", Axis::Linear),
        &[
            Line {
                name: "published",
                points: series(|s| Some(s.throughput), false),
                color: BLUE,
            },
            Line {
                name: "scheduled",
                points: series(|s| s.scheduled, false),
                color: RGBColor(120, 120, 120),
            },
        ],
    );
    let lag = plot(
        "Lag: oldest unpublished record behind its intended send time",
        ("seconds", Axis::Linear),
        ("lag (s)", Axis::Linear),
        &[Line {
            name: "lag",
            points: series(|s| s.lag_s, false),
            color: RED,
        }],
    );

    let mut verdicts = String::new();
    for v in &report.targets {
        verdicts.push_str(&format!(
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if v.met { "met" } else { "missed" },
            if v.met { "PASS" } else { "MISS" },
            escape(v.target),
            escape(&v.limit),
            escape(&v.measured)
        ));
    }
    let l = &report.latency_ms;
    let figures = [
        ("records", report.records.to_string()),
        (
            "throughput",
            format!(
                "{:.0} records/s over {:.1} s",
                report.throughput, report.elapsed_s
            ),
        ),
        (
            "latency",
            format!(
                "p50 {} · p90 {} · p99 {} · p99.9 {} · max {}",
                format_ms(l.p50),
                format_ms(l.p90),
                format_ms(l.p99),
                format_ms(l.p999),
                format_ms(l.max)
            ),
        ),
        (
            "decisions",
            format!(
                "freeze {} · alert {} · outreach {} · degraded {}",
                report.decisions.freeze,
                report.decisions.alert,
                report.decisions.outreach,
                report.decisions.degraded
            ),
        ),
        (
            "dead letters",
            format!(
                "{} ({:.3}%)",
                report.dead_letters,
                report.dead_letter_ratio * 100.0
            ),
        ),
        (
            "max lag",
            report
                .max_lag_s
                .map_or("unpaced".to_owned(), |s| format!("{s:.3} s")),
        ),
        (
            "fraud recall",
            report
                .fraud_recall
                .map_or("no fraud injected".to_owned(), |r| {
                    format!(
                        "{r:.3} ({} of {} attacks)",
                        report.fraud_caught, report.fraud_attacks
                    )
                }),
        ),
        (
            "peak RSS",
            report
                .peak_rss_mib
                .map_or("-".to_owned(), |m| format!("{m:.0} MiB")),
        ),
        (
            "passivation",
            format!(
                "{} actors passivated, {} customers restored",
                report.passivations, report.restores
            ),
        ),
        (
            "engine / plain loop",
            report
                .capacity
                .as_ref()
                .map_or("not measured (--baseline)".to_owned(), |c| {
                    format!(
                        "{:.2} ({:.0}/s against {:.0}/s)",
                        c.ratio, c.engine_per_s, c.baseline_per_s
                    )
                }),
        ),
        ("machine", format!("{} · {}", report.machine, report.mode)),
    ];
    let figures: String = figures
        .iter()
        .map(|(k, v)| format!("<tr><th>{k}</th><td>{}</td></tr>", escape(v)))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vigil-bench: {name}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 960px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }}
tr.met td:first-child {{ color: #087f23; font-weight: bold; }}
tr.missed td:first-child {{ color: #c62828; font-weight: bold; }}
.verdict {{ font-size: 1.3em; font-weight: bold; color: {verdict_color}; }}
</style></head><body>
<h1>vigil-bench: {name}</h1>
<p>{description}</p>
<p class="verdict">{verdict}</p>
<table><tr><th></th><th>target</th><th>limit</th><th>measured</th></tr>{verdicts}</table>
<table>{figures}</table>
{over_time}
{distribution}
{throughput}
{lag}
</body></html>
"#,
        name = escape(&report.scenario),
        description = escape(&report.description),
        verdict_color = if report.passed { "#087f23" } else { "#c62828" },
        verdict = if report.targets.is_empty() {
            "no targets set"
        } else if report.passed {
            "all targets met"
        } else {
            "targets missed"
        },
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
