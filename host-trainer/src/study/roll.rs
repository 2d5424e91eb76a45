//! Piano rolls for the non-autoregressive families: two-bar segments on a
//! 16th-note grid, as four voice tracks (the MuseGAN shape: bars × 16 steps
//! × pitches × 4 tracks) or merged into one polyphonic roll, and back to
//! pieces.

use crate::piece::{from_voice_lines, satb_voices, Piece};
use candle_core::{Device, Result, Tensor};

/// Grid ticks per roll step (a 16th note).
pub const STEP_TICKS: u32 = 3;
/// Steps per segment: two bars of 4/4.
pub const STEPS: usize = 32;
/// Lowest pitch of the roll.
pub const LOW: u8 = 28;
/// Pitches the roll covers (28–91: the chorales' 36–81 and their transpositions).
pub const PITCHES: usize = 64;
/// Voice tracks (soprano, alto, tenor, bass).
pub const TRACKS: usize = 4;

/// One segment: for each track and step, the sounding pitch (if any).
pub type Segment = [[Option<u8>; STEPS]; TRACKS];

/// The segments of a piece, every `stride` steps (voices above 3 are left out).
pub fn segments(piece: &Piece, stride: usize) -> Vec<Segment> {
    let steps = piece.end_tick().div_ceil(STEP_TICKS) as usize;
    let mut lines = vec![vec![None; steps]; TRACKS];
    for n in &piece.notes {
        let Some(line) = lines.get_mut(usize::from(n.voice)) else {
            continue;
        };
        if !(LOW..LOW + PITCHES as u8).contains(&n.pitch) {
            continue;
        }
        let a = (n.onset / STEP_TICKS) as usize;
        let b = ((n.onset + n.duration).div_ceil(STEP_TICKS) as usize).min(steps);
        for cell in line.iter_mut().take(b).skip(a) {
            *cell = Some(n.pitch);
        }
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start + STEPS <= steps {
        let mut seg: Segment = [[None; STEPS]; TRACKS];
        for (track, line) in seg.iter_mut().zip(&lines) {
            track.copy_from_slice(&line[start..start + STEPS]);
        }
        if seg.iter().flatten().any(Option::is_some) {
            out.push(seg);
        }
        start += stride.max(1);
    }
    out
}

/// Segments as a `[N, TRACKS, STEPS, PITCHES]` tensor of 0/1.
pub fn tracks_tensor(segments: &[Segment], device: &Device) -> Result<Tensor> {
    let mut data = vec![0f32; segments.len() * TRACKS * STEPS * PITCHES];
    for (i, seg) in segments.iter().enumerate() {
        for (k, track) in seg.iter().enumerate() {
            for (t, p) in track.iter().enumerate() {
                if let Some(p) = p {
                    data[((i * TRACKS + k) * STEPS + t) * PITCHES + usize::from(p - LOW)] = 1.0;
                }
            }
        }
    }
    Tensor::from_vec(data, (segments.len(), TRACKS, STEPS, PITCHES), device)
}

/// Segments merged into one polyphonic roll, `[N, STEPS, PITCHES]` of 0/1.
pub fn roll_tensor(segments: &[Segment], device: &Device) -> Result<Tensor> {
    tracks_tensor(segments, device)?.max(1)
}

/// Voice lines (per track, per step) → a piece.
pub fn lines_to_piece(lines: &[Vec<Option<u8>>]) -> Piece {
    from_voice_lines(lines, STEP_TICKS, 90, satb_voices())
}

/// Four-track rolls (`[N, TRACKS, STEPS, PITCHES]` probabilities or 0/1)
/// played one after another: per track and step the most likely pitch if
/// it is above `threshold`.
pub fn tracks_to_piece(tracks: &Tensor, threshold: f32) -> Result<Piece> {
    let (n, k, t, p) = tracks.dims4()?;
    let flat = tracks
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mut lines = vec![Vec::with_capacity(n * t); k];
    for i in 0..n {
        for (track, line) in lines.iter_mut().enumerate() {
            for step in 0..t {
                let at = ((i * k + track) * t + step) * p;
                let row = &flat[at..at + p];
                let (best, &value) = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .expect("rolls have pitches");
                line.push((value > threshold).then_some(LOW + best as u8));
            }
        }
    }
    Ok(lines_to_piece(&lines))
}

/// Polyphonic rolls (`[N, STEPS, PITCHES]`, 0/1) played one after another;
/// sounding pitches are given voices by rank, highest first.
pub fn rolls_to_piece(rolls: &Tensor) -> Result<Piece> {
    let (n, t, p) = rolls.dims3()?;
    let flat = rolls
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mut steps: Vec<Vec<u8>> = Vec::with_capacity(n * t);
    for i in 0..n {
        for step in 0..t {
            let at = (i * t + step) * p;
            let mut on: Vec<u8> = (0..p)
                .filter(|&q| flat[at + q] > 0.5)
                .map(|q| LOW + q as u8)
                .collect();
            on.reverse();
            steps.push(on);
        }
    }
    let voices = steps.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let lines: Vec<Vec<Option<u8>>> = (0..voices)
        .map(|v| steps.iter().map(|s| s.get(v).copied()).collect())
        .collect();
    Ok(lines_to_piece(&lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::jsb_piece;

    #[test]
    fn segments_round_trip_through_tensors_and_pieces() {
        let steps: Vec<Vec<f64>> = (0..40)
            .map(|i| {
                vec![
                    72.0 + (i / 4 % 3) as f64,
                    67.0,
                    60.0,
                    if i % 8 < 4 { 48.0 } else { -1.0 },
                ]
            })
            .collect();
        let piece = jsb_piece(&steps).unwrap();
        let segs = segments(&piece, 16);
        assert_eq!(segs.len(), 1); // 40 steps: one full 32-step segment
        let tracks = tracks_tensor(&segs, &Device::Cpu).unwrap();
        assert_eq!(tracks.dims(), &[1, TRACKS, STEPS, PITCHES]);
        let back = tracks_to_piece(&tracks, 0.5).unwrap();
        let head: Vec<_> = piece
            .notes
            .iter()
            .filter(|n| n.onset + n.duration <= 96)
            .copied()
            .collect();
        let got: Vec<_> = back
            .notes
            .iter()
            .filter(|n| n.onset + n.duration < 96)
            .copied()
            .collect();
        assert_eq!(
            got,
            head.iter()
                .filter(|n| n.onset + n.duration < 96)
                .copied()
                .collect::<Vec<_>>()
        );
        let roll = roll_tensor(&segs, &Device::Cpu).unwrap();
        assert_eq!(roll.dims(), &[1, STEPS, PITCHES]);
        let poly = rolls_to_piece(&roll).unwrap();
        assert_eq!(poly.notes.len(), back.notes.len());
    }
}
