//! PNG plots with plotters: the loss curve, pitch histograms and the piano
//! roll of a piece. The font is compiled in (`assets/`), so plots need no
//! system fonts.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::metrics::Metric;
use crate::piece::Piece;

const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSansMono.ttf");
        // The font is valid: it ships with the crate.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, bytes);
    });
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e:?}")
}

/// The series' legend, framed on white.
fn draw_legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// A white plot with a title and axes over `x` × `y`.
fn titled_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    title: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<RollChart<'a, 'b>> {
    root.fill(&WHITE).map_err(err)?;
    ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
        .map_err(err)
}

/// Training and validation loss against the step.
pub fn loss_curve(metrics: &[Metric], path: &Path, title: &str) -> Result<()> {
    register_font();
    // (step, loss) of the training steps, and of the evaluations.
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for m in metrics {
        match m {
            Metric::Train { step, loss, .. } => train.push((*step as f64, *loss)),
            Metric::Eval { step, val_loss, .. } => valid.push((*step as f64, *val_loss)),
        }
    }
    let max_step = train.iter().chain(&valid).map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = train
        .iter()
        .chain(&valid)
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() {
        (lo * 0.95, hi * 1.05 + 1e-9)
    } else {
        (0.0, 1.0)
    };

    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    let mut chart = titled_chart(&root, title, 0.0..max_step, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("loss (nats/token)")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(train.iter().copied(), &BLUE))
        .map_err(err)?
        .label("train")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(valid.iter().copied(), RED.stroke_width(2)))
        .map_err(err)?
        .label("validation")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .draw_series(valid.iter().map(|&p| Circle::new(p, 3, RED.filled())))
        .map_err(err)?;
    draw_legend(&mut chart)?;
    root.present().map_err(err)?;
    Ok(())
}

/// A chart over f64 × f64 (the piano roll's: quarter notes across, pitch up).
type RollChart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Octave lines at each C, bar lines and bar numbers.
fn draw_grid(
    chart: &mut RollChart<'_, '_>,
    piece: &Piece,
    (lo, hi): (u8, u8),
    end: f64,
    (bottom, top): (f64, f64),
) -> Result<()> {
    let quarter = f64::from(kantor_engine::vocab::TICKS_PER_QUARTER);
    let octave = RGBColor(225, 225, 225);
    for c in (0..=127u8).filter(|p| p % 12 == 0 && (lo..=hi.saturating_add(1)).contains(p)) {
        let y = f64::from(c) - 0.5;
        chart
            .draw_series(LineSeries::new([(0.0, y), (end, y)], octave))
            .map_err(err)?;
    }
    let bars: Vec<crate::piece::Bar> = piece.bars().collect();
    let every = bars.len().div_ceil(40).max(1);
    for (i, bar) in bars.iter().enumerate() {
        let x = f64::from(bar.start) / quarter;
        chart
            .draw_series(LineSeries::new(
                [(x, bottom), (x, top)],
                RGBColor(150, 150, 150),
            ))
            .map_err(err)?;
        if i % every == 0 {
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{}", i + 1),
                    (x + 0.1, top - 0.2),
                    (FONT, 13).into_font().color(&BLACK),
                )))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// Pitch distributions (each summing to 1) over MIDI pitches, one line per series.
pub fn pitch_histograms(series: &[(String, Vec<f64>)], path: &Path, title: &str) -> Result<()> {
    register_font();
    let used: Vec<usize> = (0..128)
        .filter(|&p| {
            series
                .iter()
                .any(|(_, h)| h.get(p).copied().unwrap_or(0.0) > 0.0)
        })
        .collect();
    let (lo, hi) = match (used.first(), used.last()) {
        (Some(&a), Some(&b)) => (a.saturating_sub(2) as f64, (b + 2).min(127) as f64),
        _ => (0.0, 127.0),
    };
    let top = series
        .iter()
        .flat_map(|(_, h)| h.iter().copied())
        .fold(0.01, f64::max)
        * 1.1;
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    let mut chart = titled_chart(&root, title, lo..hi, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("MIDI pitch")
        .y_desc("share of notes")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    let palette = [
        BLACK,
        RED,
        BLUE,
        GREEN,
        MAGENTA,
        CYAN,
        RGBColor(255, 140, 0),
        RGBColor(128, 0, 128),
    ];
    for (i, (name, h)) in series.iter().enumerate() {
        let color = palette[i % palette.len()];
        let points: Vec<(f64, f64)> = h.iter().enumerate().map(|(p, &v)| (p as f64, v)).collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    draw_legend(&mut chart)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Width and height of a piano roll, in pixels.
pub const ROLL_SIZE: (u32, u32) = (1200, 560);

/// One colour per voice (Tableau's ten, then six more).
const VOICE_COLOURS: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 128, 0),
    RGBColor(0, 128, 128),
    RGBColor(128, 0, 0),
    RGBColor(255, 215, 0),
    RGBColor(0, 0, 0),
];

/// The piano roll of a piece as a PNG of [`ROLL_SIZE`]: time across (bar
/// lines and numbers marked), pitch up, one colour per voice. Written
/// atomically.
pub fn piano_roll(piece: &Piece, path: &Path, title: &str) -> Result<()> {
    let (lo, hi) = piece
        .pitch_range()
        .ok_or_else(|| anyhow!("the piece has no notes to draw"))?;
    crate::fsutil::write_atomic_with(path, |tmp| draw_piano_roll(piece, (lo, hi), tmp, title))
}

fn draw_piano_roll(piece: &Piece, (lo, hi): (u8, u8), path: &Path, title: &str) -> Result<()> {
    register_font();
    let quarter = f64::from(kantor_engine::vocab::TICKS_PER_QUARTER);
    let end = f64::from(piece.end_tick().max(1)) / quarter;
    let (bottom, top) = (f64::from(lo) - 1.5, f64::from(hi) + 2.5);
    let root = BitMapBackend::new(path, ROLL_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root
        .titled(title, (FONT, 22))
        .map_err(err)?
        .margin(0, 0, 0, 0);
    // The roll on the left, the legend (one colour per voice) on the right.
    let (area, legend) = root.split_horizontally(ROLL_SIZE.0 - 130);
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..end, bottom..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("quarter notes (bars numbered at the top)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("pitch")
        .y_labels(usize::from(hi - lo) + 4)
        .y_label_formatter(&|y| {
            let p = y.round() as i32;
            if (y - f64::from(p)).abs() < 1e-6 && p.rem_euclid(12) == 0 {
                format!("C{}", p / 12 - 1)
            } else {
                String::new()
            }
        })
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    draw_grid(&mut chart, piece, (lo, hi), end, (bottom, top))?;
    let voices: std::collections::BTreeSet<u8> = piece.notes.iter().map(|n| n.voice).collect();
    for (row, voice) in voices.into_iter().enumerate() {
        let colour = VOICE_COLOURS[usize::from(voice) % VOICE_COLOURS.len()];
        let name = piece
            .voices
            .get(usize::from(voice))
            .and_then(|v| v.name.clone())
            .unwrap_or_else(|| format!("voice {}", voice + 1));
        let notes = piece.notes.iter().filter(|n| n.voice == voice).map(|n| {
            let (x0, x1) = (
                f64::from(n.onset) / quarter,
                f64::from(n.onset + n.duration.max(1)) / quarter,
            );
            let y = f64::from(n.pitch);
            Rectangle::new([(x0, y - 0.42), (x1, y + 0.42)], colour.mix(0.85).filled())
        });
        chart.draw_series(notes).map_err(err)?;
        let y = 24 + 22 * row as i32;
        legend
            .draw(&Rectangle::new([(4, y - 6), (22, y + 6)], colour.filled()))
            .map_err(err)?;
        legend
            .draw(&Text::new(name, (28, y - 7), (FONT, 14).into_font()))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}
