//! A piece of music on the vocabulary's grid: what the tokenizer encodes and decodes.
//!
//! Every source (MIDI files, the JSB Chorales JSON) becomes a [`Piece`]; every
//! REMI token sequence decodes to one. Times are grid ticks
//! ([`TICKS_PER_QUARTER`] to the quarter note).

use kantor_engine::decoder::Note;
use kantor_engine::vocab::{
    duration_class, duration_ticks, velocity_bin, velocity_value, TimeSignature, DEFAULT_TEMPO,
    DEFAULT_TIME_SIGNATURE, NUM_PITCHES, TICKS_PER_QUARTER, TIME_SIGNATURES,
};

/// Where a voice came from, so that a decoded piece can be written back with
/// its original channels, instruments and names.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VoiceInfo {
    /// MIDI channel (0–15) to play the voice on.
    pub channel: u8,
    /// General MIDI program, if the source set one.
    pub program: Option<u8>,
    /// Track name, if the source had one.
    pub name: Option<String>,
}

/// A meter change, always at a bar start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterChange {
    /// Grid tick of the bar start.
    pub tick: u32,
    /// Index into [`TIME_SIGNATURES`].
    pub meter: u8,
}

/// A tempo change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TempoChange {
    /// Grid tick.
    pub tick: u32,
    /// Index into [`kantor_engine::vocab::TEMPOS_BPM`].
    pub tempo: u8,
}

/// One bar of a piece's bar structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Grid tick of the bar start.
    pub start: u32,
    /// Index into [`TIME_SIGNATURES`].
    pub meter: u8,
    /// True if the meter changes at this bar (or it is the first bar).
    pub meter_changes: bool,
}

impl Bar {
    /// Length of the bar in grid ticks.
    pub fn ticks(&self) -> u32 {
        TIME_SIGNATURES[usize::from(self.meter)].bar_ticks()
    }
    /// Grid tick just after the bar.
    pub fn end(&self) -> u32 {
        self.start + self.ticks()
    }
}

/// A piece on the grid. Invariants (kept by [`Piece::new`]): notes sorted in
/// encoding order (onset, voice, pitch, duration, velocity); tempo and meter
/// lists start at tick 0, are sorted, and have no repeated value; meter changes
/// fall on bar starts.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Piece {
    /// Notes in encoding order.
    pub notes: Vec<Note>,
    /// Tempo changes (the first at tick 0).
    pub tempos: Vec<TempoChange>,
    /// Meter changes (the first at tick 0).
    pub meters: Vec<MeterChange>,
    /// Per voice: channel, program and name for writing MIDI.
    pub voices: Vec<VoiceInfo>,
}

impl Piece {
    /// How many voices have notes.
    pub fn voice_count(&self) -> usize {
        self.notes
            .iter()
            .map(|n| n.voice)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }

    /// Build a piece, establishing the invariants: sorts the notes, drops
    /// repeated tempo and meter values and puts the defaults at tick 0 when
    /// the source gives none. Meter changes must already be on bar starts
    /// (see [`align_meters`]).
    pub fn new(
        mut notes: Vec<Note>,
        tempos: Vec<TempoChange>,
        meters: Vec<MeterChange>,
        voices: Vec<VoiceInfo>,
    ) -> Piece {
        notes.sort_unstable_by_key(|n| (n.onset, n.voice, n.pitch, n.duration, n.velocity));
        Piece {
            notes,
            tempos: normalise_changes(
                tempos,
                |t| t.tick,
                |t| t.tempo,
                |tick, tempo| TempoChange { tick, tempo },
                DEFAULT_TEMPO,
            ),
            meters: normalise_changes(
                meters,
                |m| m.tick,
                |m| m.meter,
                |tick, meter| MeterChange { tick, meter },
                DEFAULT_TIME_SIGNATURE,
            ),
            voices,
        }
    }

    /// The last tick at which something starts (a note, a tempo or meter change).
    pub fn last_onset(&self) -> u32 {
        let notes = self.notes.last().map_or(0, |n| n.onset);
        let tempos = self.tempos.last().map_or(0, |t| t.tick);
        let meters = self.meters.last().map_or(0, |m| m.tick);
        notes.max(tempos).max(meters)
    }

    /// The tick at which the last note ends.
    pub fn end_tick(&self) -> u32 {
        self.notes
            .iter()
            .map(|n| n.onset + n.duration)
            .max()
            .unwrap_or(0)
    }

    /// The bars of the piece, from tick 0 through the bar holding [`Piece::last_onset`].
    pub fn bars(&self) -> impl Iterator<Item = Bar> + '_ {
        let last = self.last_onset();
        let mut start = 0u32;
        let mut next_meter = 0usize;
        let mut meter = DEFAULT_TIME_SIGNATURE;
        let mut done = false;
        std::iter::from_fn(move || {
            if done || start > last {
                return None;
            }
            let mut meter_changes = start == 0;
            while let Some(change) = self.meters.get(next_meter).filter(|m| m.tick <= start) {
                meter_changes |= change.meter != meter || start == 0;
                meter = change.meter;
                next_meter += 1;
            }
            let bar = Bar {
                start,
                meter,
                meter_changes,
            };
            match start.checked_add(bar.ticks()) {
                Some(end) => start = end,
                None => done = true,
            }
            Some(bar)
        })
    }

    /// The piece moved by `semitones`, or `None` if a pitch would leave `range`.
    pub fn transposed(&self, semitones: i32, range: std::ops::RangeInclusive<u8>) -> Option<Piece> {
        let mut notes = self.notes.clone();
        for n in &mut notes {
            let p = i32::from(n.pitch) + semitones;
            if p < i32::from(*range.start()) || p > i32::from(*range.end()) {
                return None;
            }
            n.pitch = p as u8;
        }
        Some(Piece {
            notes,
            ..self.clone()
        })
    }

    /// Lowest and highest pitch, if the piece has notes.
    pub fn pitch_range(&self) -> Option<(u8, u8)> {
        let min = self.notes.iter().map(|n| n.pitch).min()?;
        let max = self.notes.iter().map(|n| n.pitch).max()?;
        Some((min, max))
    }

    /// Length in quarter notes (to the end of the last note).
    pub fn quarters(&self) -> f64 {
        f64::from(self.end_tick()) / f64::from(TICKS_PER_QUARTER)
    }
}

/// Voice lines on a step grid (per voice, per step, the sounding pitch) → a
/// piece. Equal consecutive pitches of a voice become one note: on such a
/// grid held and repeated notes cannot be told apart.
pub fn from_voice_lines(
    lines: &[Vec<Option<u8>>],
    step_ticks: u32,
    velocity: u8,
    voices: Vec<VoiceInfo>,
) -> Piece {
    let mut notes = Vec::new();
    for (v, line) in lines.iter().enumerate() {
        let mut t = 0;
        while t < line.len() {
            let Some(pitch) = line[t] else {
                t += 1;
                continue;
            };
            let start = t;
            while t < line.len() && line[t] == Some(pitch) {
                t += 1;
            }
            notes.push(Note {
                onset: start as u32 * step_ticks,
                voice: v.min(15) as u8,
                pitch,
                duration: duration_ticks(duration_class((t - start) as u32 * step_ticks)),
                velocity: velocity_value(velocity_bin(velocity)),
            });
        }
    }
    Piece::new(notes, vec![], vec![], voices)
}

/// Soprano, alto, tenor and bass on channels 1–4 with a choir sound.
pub fn satb_voices() -> Vec<VoiceInfo> {
    ["Soprano", "Alto", "Tenor", "Bass"]
        .iter()
        .enumerate()
        .map(|(i, n)| VoiceInfo {
            channel: i as u8,
            program: Some(52), // choir aahs
            name: Some((*n).to_string()),
        })
        .collect()
}

/// The full MIDI pitch range the vocabulary covers.
pub const PITCH_RANGE: std::ops::RangeInclusive<u8> = 0..=(NUM_PITCHES as u8 - 1);

fn normalise_changes<T: Copy>(
    mut changes: Vec<T>,
    tick: impl Fn(&T) -> u32,
    value: impl Fn(&T) -> u8,
    make: impl Fn(u32, u8) -> T,
    default: u8,
) -> Vec<T> {
    changes.sort_by_key(&tick); // stable: of two changes at one tick, the later wins below
    let mut out: Vec<T> = Vec::with_capacity(changes.len() + 1);
    for c in changes {
        if let Some(last) = out.last_mut() {
            if tick(last) == tick(&c) {
                *last = c;
                continue;
            }
        }
        out.push(c);
    }
    if out.first().is_none_or(|c| tick(c) > 0) {
        out.insert(0, make(0, default));
    }
    out.dedup_by(|later, earlier| value(later) == value(earlier));
    out
}

/// The supported meter for a time signature: itself if supported; else one
/// with the same bar length (closest beat unit); else the longest supported
/// bar that divides the bar evenly; else 4/4. Notes keep their exact times
/// whatever the choice; only the bar lines the model sees differ.
pub fn supported_meter(numerator: u8, denominator: u32) -> u8 {
    if let Some(i) = u8::try_from(denominator)
        .ok()
        .and_then(|d| kantor_engine::vocab::time_signature_index(numerator, d))
    {
        return i;
    }
    let whole = 4 * TICKS_PER_QUARTER;
    if numerator == 0
        || denominator == 0
        || !(u32::from(numerator) * whole).is_multiple_of(denominator)
    {
        return DEFAULT_TIME_SIGNATURE;
    }
    let bar = u32::from(numerator) * whole / denominator;
    let distance = |ts: &TimeSignature| {
        (i64::from(ts.denominator).ilog2() as i64 - i64::from(denominator.max(1)).ilog2() as i64)
            .abs()
    };
    let same_length = TIME_SIGNATURES
        .iter()
        .enumerate()
        .filter(|(_, ts)| ts.bar_ticks() == bar)
        .min_by_key(|(_, ts)| (distance(ts), std::cmp::Reverse(ts.denominator)));
    if let Some((i, _)) = same_length {
        return i as u8;
    }
    TIME_SIGNATURES
        .iter()
        .enumerate()
        .filter(|(_, ts)| bar.is_multiple_of(ts.bar_ticks()) && ts.bar_ticks() >= TICKS_PER_QUARTER)
        .max_by_key(|(_, ts)| (ts.bar_ticks(), ts.denominator == 4))
        .map_or(DEFAULT_TIME_SIGNATURE, |(i, _)| i as u8)
}

/// Move meter changes onto bar starts: a change that falls inside a bar takes
/// effect at the next bar line; of several changes for one bar, the last wins.
pub fn align_meters(mut changes: Vec<MeterChange>) -> Vec<MeterChange> {
    changes.sort_by_key(|m| m.tick);
    let mut out: Vec<MeterChange> = Vec::new();
    let mut bar_start = 0u64;
    let mut bar_ticks = u64::from(TIME_SIGNATURES[usize::from(DEFAULT_TIME_SIGNATURE)].bar_ticks());
    for change in changes {
        let tick = u64::from(change.tick);
        if tick > bar_start {
            let bars = (tick - bar_start).div_ceil(bar_ticks);
            bar_start += bars * bar_ticks;
        }
        let Ok(aligned) = u32::try_from(bar_start) else {
            break;
        };
        match out.last_mut() {
            Some(last) if last.tick == aligned => last.meter = change.meter,
            _ => out.push(MeterChange {
                tick: aligned,
                meter: change.meter,
            }),
        }
        bar_ticks = u64::from(TIME_SIGNATURES[usize::from(change.meter)].bar_ticks());
    }
    out
}

/// Small pieces for the unit tests of the crate.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A quarter note (12 ticks) at `onset`.
    pub fn note(onset: u32, voice: u8, pitch: u8) -> Note {
        Note {
            onset,
            voice,
            pitch,
            duration: 12,
            velocity: 90,
        }
    }

    /// One 4/4 bar per entry of `sopranos`, in quarter notes: voice 0 climbs
    /// from the entry's pitch, each lower voice holds it an octave further
    /// down; `voices` voices in all.
    pub fn chorale_like(sopranos: &[u8], voices: u8) -> Piece {
        let notes = sopranos
            .iter()
            .enumerate()
            .flat_map(|(bar, &p)| {
                (0..4u32).flat_map(move |beat| {
                    let onset = bar as u32 * 48 + beat * 12;
                    (0..voices).map(move |v| {
                        let pitch = if v == 0 { p + beat as u8 } else { p - 12 * v };
                        note(onset, v, pitch)
                    })
                })
            })
            .collect();
        Piece::new(notes, vec![], vec![], vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kantor_engine::vocab::time_signature_index;

    fn meter(n: u8, d: u8) -> u8 {
        time_signature_index(n, d).unwrap()
    }

    #[test]
    fn unsupported_meters_map_to_equal_bars_or_even_divisions() {
        assert_eq!(supported_meter(3, 4), meter(3, 4));
        assert_eq!(supported_meter(6, 16), meter(3, 8));
        assert_eq!(supported_meter(12, 16), meter(6, 8));
        assert_eq!(supported_meter(2, 1), meter(4, 2));
        assert_eq!(supported_meter(5, 2), meter(5, 4)); // 10 quarters = 2 bars of 5/4
        assert_eq!(supported_meter(9, 2), meter(6, 4)); // 18 quarters = 3 bars of 6/4
        assert_eq!(supported_meter(5, 16), DEFAULT_TIME_SIGNATURE);
        assert_eq!(supported_meter(0, 4), DEFAULT_TIME_SIGNATURE);
        assert_eq!(supported_meter(4, 0), DEFAULT_TIME_SIGNATURE);
    }

    #[test]
    fn meter_changes_inside_a_bar_move_to_the_next_bar_line() {
        let three_four = meter(3, 4);
        let aligned = align_meters(vec![
            MeterChange {
                tick: 0,
                meter: three_four,
            },
            MeterChange {
                tick: 40,
                meter: DEFAULT_TIME_SIGNATURE,
            }, // inside bar 2 (36..72)
        ]);
        assert_eq!(
            aligned,
            vec![
                MeterChange {
                    tick: 0,
                    meter: three_four
                },
                MeterChange {
                    tick: 72,
                    meter: DEFAULT_TIME_SIGNATURE
                }
            ]
        );
    }

    #[test]
    fn bars_follow_the_meter_changes() {
        let piece = Piece::new(
            vec![],
            vec![TempoChange {
                tick: 200,
                tempo: 3,
            }],
            vec![
                MeterChange {
                    tick: 0,
                    meter: meter(3, 4),
                },
                MeterChange {
                    tick: 72,
                    meter: meter(2, 2),
                },
            ],
            vec![],
        );
        let bars: Vec<_> = piece.bars().map(|b| (b.start, b.meter_changes)).collect();
        assert_eq!(
            bars,
            vec![
                (0, true),
                (36, false),
                (72, true),
                (120, false),
                (168, false)
            ]
        );
        assert_eq!(
            piece.tempos[0],
            TempoChange {
                tick: 0,
                tempo: DEFAULT_TEMPO
            }
        );
    }

    #[test]
    fn repeated_tempi_are_dropped_and_the_later_of_two_at_one_tick_wins() {
        let t = |tick, tempo| TempoChange { tick, tempo };
        let piece = Piece::new(
            vec![],
            vec![t(0, 5), t(10, 5), t(20, 6), t(20, 7), t(30, 7)],
            vec![],
            vec![],
        );
        assert_eq!(piece.tempos, vec![t(0, 5), t(20, 7)]);
    }
}
