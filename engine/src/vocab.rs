//! The REMI vocabulary shared by the engine and the trainer.
//!
//! A piece is a sequence of typed tokens (Huang & Yang 2020, "REMI"), with a
//! voice token so that the four parts of a chorale stay apart:
//!
//! ```text
//! Bos  Bar TimeSignature(4/4) Tempo(96)
//!      Position(0)  Voice(0) Pitch(67) Velocity(90) Duration(12)
//!                   Voice(1) Pitch(62) Velocity(90) Duration(12) ...
//!      Position(12) ...
//!      Rest(2) Bar ...                      (two empty bars, then a bar)
//! Eos
//! ```
//!
//! # The grid (what the vocabulary keeps and what it rounds)
//!
//! * **Time** is counted in grid ticks, [`TICKS_PER_QUARTER`] = 12 to the
//!   quarter note, so 16ths (3), 8th triplets (4) and 16th triplets (2) are
//!   exact. A note's onset is rounded to the nearest grid tick.
//! * **Bars** are at most [`MAX_BAR_TICKS`] (8 quarter notes) long; the
//!   [`TIME_SIGNATURES`] table lists the supported meters (n/2 for n ≤ 4,
//!   n/4 for n ≤ 8, n/8 for n ≤ 16).
//! * **Durations** are rounded to the nearest entry of [`DURATIONS`] (ties go
//!   to the shorter): exact to the tick up to a half note, to the 16th up to
//!   a whole note, to the 8th up to two whole notes, and coarser beyond, up to
//!   64 quarter notes; a note never becomes shorter than one tick.
//! * **Velocity** is kept as one of 32 bins of width 4 ([`velocity_bin`]).
//! * **Tempo** is rounded (in log space) to the Maelzel metronome scale,
//!   40–208 BPM ([`TEMPOS_BPM`]).
//! * **Pitch** is exact (0–127), and so is the **voice** (0–15): the trainer
//!   gives each (track, channel) pair of a MIDI file its own voice.
//!
//! Token ids are stable: they are the contract between a trained model and
//! the engine. Ids are laid out kind by kind in the order of [`TokenKind`].

use core::fmt;

/// Grid ticks per quarter note.
pub const TICKS_PER_QUARTER: u32 = 12;
/// Longest bar the vocabulary can express, in grid ticks (8 quarter notes).
pub const MAX_BAR_TICKS: u32 = 96;
/// Number of `Position` tokens (one per grid tick of the longest bar).
pub const NUM_POSITIONS: usize = MAX_BAR_TICKS as usize;
/// Number of voices (`Voice` tokens).
pub const NUM_VOICES: usize = 16;
/// Number of MIDI pitches (`Pitch` tokens).
pub const NUM_PITCHES: usize = 128;
/// Number of velocity bins (`Velocity` tokens).
pub const NUM_VELOCITIES: usize = 32;
/// Number of duration classes (`Duration` tokens).
pub const NUM_DURATIONS: usize = DURATIONS.len();
/// Number of tempo classes (`Tempo` tokens).
pub const NUM_TEMPOS: usize = TEMPOS_BPM.len();
/// Number of supported time signatures (`TimeSignature` tokens).
pub const NUM_TIME_SIGNATURES: usize = TIME_SIGNATURES.len();
/// Longest run of empty bars one `Rest` token can skip.
pub const MAX_REST_BARS: u8 = 8;

/// Token id of padding (never produced by the encoder; masked from the loss).
pub const PAD_ID: u16 = 0;
/// Token id of the start-of-piece marker.
pub const BOS_ID: u16 = 1;
/// Token id of the end-of-piece marker.
pub const EOS_ID: u16 = 2;
const BAR_ID: u16 = 3;
const REST_BASE: u16 = 4;
const TIME_SIGNATURE_BASE: u16 = REST_BASE + MAX_REST_BARS as u16;
const TEMPO_BASE: u16 = TIME_SIGNATURE_BASE + NUM_TIME_SIGNATURES as u16;
const POSITION_BASE: u16 = TEMPO_BASE + NUM_TEMPOS as u16;
const VOICE_BASE: u16 = POSITION_BASE + NUM_POSITIONS as u16;
const PITCH_BASE: u16 = VOICE_BASE + NUM_VOICES as u16;
const VELOCITY_BASE: u16 = PITCH_BASE + NUM_PITCHES as u16;
const DURATION_BASE: u16 = VELOCITY_BASE + NUM_VELOCITIES as u16;
/// Number of base (pre-BPE) tokens. BPE tokens are numbered from here on.
pub const VOCAB_SIZE: usize = DURATION_BASE as usize + NUM_DURATIONS;

/// Note durations in grid ticks, indexed by the `Duration` token's payload.
pub const DURATIONS: [u16; 64] = duration_table();

const fn duration_table() -> [u16; 64] {
    // (first value, step, count) per segment.
    const SEGMENTS: [(u16, u16, usize); 6] = [
        (1, 1, 24),
        (27, 3, 8),
        (54, 6, 8),
        (108, 12, 8),
        (216, 24, 8),
        (432, 48, 8),
    ];
    let mut table = [0u16; 64];
    let mut i = 0;
    let mut s = 0;
    while s < SEGMENTS.len() {
        let (first, step, count) = SEGMENTS[s];
        let mut k = 0;
        while k < count {
            table[i] = first + step * k as u16;
            i += 1;
            k += 1;
        }
        s += 1;
    }
    table
}

/// Tempo classes in beats (quarter notes) per minute: Maelzel's metronome scale.
pub const TEMPOS_BPM: [u16; 39] = [
    40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60, 63, 66, 69, 72, 76, 80, 84, 88, 92, 96, 100, 104,
    108, 112, 116, 120, 126, 132, 138, 144, 152, 160, 168, 176, 184, 192, 200, 208,
];

/// A time signature (numerator, denominator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeSignature {
    /// Beats per bar.
    pub numerator: u8,
    /// Beat unit (2, 4 or 8).
    pub denominator: u8,
}

impl TimeSignature {
    /// Length of one bar in grid ticks.
    pub const fn bar_ticks(self) -> u32 {
        self.numerator as u32 * 4 * TICKS_PER_QUARTER / self.denominator as u32
    }
}

/// Supported time signatures, indexed by the `TimeSignature` token's payload.
pub const TIME_SIGNATURES: [TimeSignature; 28] = time_signature_table();

const fn time_signature_table() -> [TimeSignature; 28] {
    let mut table = [TimeSignature {
        numerator: 4,
        denominator: 4,
    }; 28];
    let mut i = 0;
    // n/2 for n in 1..=4, n/4 for n in 1..=8, n/8 for n in 1..=16.
    let groups: [(u8, u8); 3] = [(2, 4), (4, 8), (8, 16)];
    let mut g = 0;
    while g < groups.len() {
        let (denominator, max) = groups[g];
        let mut n = 1;
        while n <= max {
            table[i] = TimeSignature {
                numerator: n,
                denominator,
            };
            i += 1;
            n += 1;
        }
        g += 1;
    }
    table
}

/// The meter a piece has until it says otherwise (4/4).
pub const DEFAULT_TIME_SIGNATURE: u8 = 7;
/// The tempo a piece has until it says otherwise (120 BPM).
pub const DEFAULT_TEMPO: u8 = 26;

/// Index of a time signature in [`TIME_SIGNATURES`], if it is supported.
pub fn time_signature_index(numerator: u8, denominator: u8) -> Option<u8> {
    TIME_SIGNATURES
        .iter()
        .position(|ts| ts.numerator == numerator && ts.denominator == denominator)
        .map(|i| i as u8)
}

/// Velocity bin (0–31) of a MIDI velocity; 0 is treated as 1.
pub const fn velocity_bin(velocity: u8) -> u8 {
    let v = if velocity == 0 {
        1
    } else if velocity > 127 {
        127
    } else {
        velocity
    };
    v / 4
}

/// The MIDI velocity a bin decodes to (the middle of the bin).
pub const fn velocity_value(bin: u8) -> u8 {
    let b = if bin as usize >= NUM_VELOCITIES {
        NUM_VELOCITIES as u8 - 1
    } else {
        bin
    };
    b * 4 + 2
}

/// Duration class of a length in grid ticks: the nearest entry of
/// [`DURATIONS`], ties to the shorter; 0 becomes the shortest class and
/// anything beyond the table the longest.
pub fn duration_class(ticks: u32) -> u8 {
    let mut best = 0usize;
    for (i, &d) in DURATIONS.iter().enumerate() {
        if u32::from(d) <= ticks {
            best = i;
        } else {
            let below = ticks.saturating_sub(u32::from(DURATIONS[best]));
            let above = u32::from(d) - ticks;
            if above < below {
                best = i;
            }
            break;
        }
    }
    best as u8
}

/// Duration in grid ticks of a duration class (the longest for out-of-range classes).
pub fn duration_ticks(class: u8) -> u32 {
    let i = usize::from(class).min(NUM_DURATIONS - 1);
    DURATIONS.get(i).map_or(1, |&d| u32::from(d))
}

/// Tempo class of a MIDI tempo (microseconds per quarter note): the nearest
/// entry of [`TEMPOS_BPM`] in log space.
pub fn tempo_class(micros_per_quarter: u32) -> u8 {
    let us = u128::from(micros_per_quarter.max(1));
    // bpm = 6e7 / us; bpm < sqrt(a*b)  <=>  (6e7)^2 < a*b*us^2
    let numerator = 60_000_000u128 * 60_000_000u128;
    let mut class = 0;
    for pair in TEMPOS_BPM.windows(2) {
        let ab = u128::from(pair[0]) * u128::from(pair[1]);
        if numerator > ab * us * us {
            class += 1;
        } else {
            break;
        }
    }
    class
}

/// MIDI tempo (microseconds per quarter note) of a tempo class.
pub fn tempo_micros(class: u8) -> u32 {
    let i = usize::from(class).min(NUM_TEMPOS - 1);
    TEMPOS_BPM
        .get(i)
        .map_or(500_000, |&bpm| 60_000_000 / u32::from(bpm))
}

/// The kinds of token, in id order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenKind {
    /// Padding.
    Pad,
    /// Start of a piece.
    Bos,
    /// End of a piece.
    Eos,
    /// Start of the next bar.
    Bar,
    /// Empty bars before the next `Bar`.
    Rest,
    /// Meter of the current bar.
    TimeSignature,
    /// Tempo from here on.
    Tempo,
    /// Onset within the bar.
    Position,
    /// Voice of the following notes.
    Voice,
    /// A note's pitch (starts a note).
    Pitch,
    /// A note's velocity bin.
    Velocity,
    /// A note's duration class (ends a note).
    Duration,
}

/// One base REMI token. Payloads are indices into the tables of this module;
/// a token made with an out-of-range payload has no id ([`Token::id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Token {
    /// Padding.
    Pad,
    /// Start of a piece.
    Bos,
    /// End of a piece.
    Eos,
    /// Start of the next bar.
    Bar,
    /// This many empty bars (1 ..= [`MAX_REST_BARS`]) come before the next `Bar`.
    Rest(u8),
    /// Meter of the current bar: index into [`TIME_SIGNATURES`]. Follows `Bar`.
    TimeSignature(u8),
    /// Tempo from this point: index into [`TEMPOS_BPM`].
    Tempo(u8),
    /// Onset of the following notes, in grid ticks from the start of the bar.
    Position(u8),
    /// Voice (0–15) of the following notes.
    Voice(u8),
    /// MIDI pitch of a new note.
    Pitch(u8),
    /// Velocity bin of the note (see [`velocity_bin`]).
    Velocity(u8),
    /// Duration class of the note: index into [`DURATIONS`].
    Duration(u8),
}

impl Token {
    /// The token with this id, if the id is a base token.
    pub fn from_id(id: u16) -> Option<Token> {
        let in_range = |base: u16, count: usize| {
            id.checked_sub(base)
                .filter(|&offset| usize::from(offset) < count)
                .map(|offset| offset as u8)
        };
        Some(match id {
            PAD_ID => Token::Pad,
            BOS_ID => Token::Bos,
            EOS_ID => Token::Eos,
            BAR_ID => Token::Bar,
            _ => {
                if let Some(n) = in_range(REST_BASE, MAX_REST_BARS as usize) {
                    Token::Rest(n + 1)
                } else if let Some(i) = in_range(TIME_SIGNATURE_BASE, NUM_TIME_SIGNATURES) {
                    Token::TimeSignature(i)
                } else if let Some(i) = in_range(TEMPO_BASE, NUM_TEMPOS) {
                    Token::Tempo(i)
                } else if let Some(i) = in_range(POSITION_BASE, NUM_POSITIONS) {
                    Token::Position(i)
                } else if let Some(i) = in_range(VOICE_BASE, NUM_VOICES) {
                    Token::Voice(i)
                } else if let Some(i) = in_range(PITCH_BASE, NUM_PITCHES) {
                    Token::Pitch(i)
                } else if let Some(i) = in_range(VELOCITY_BASE, NUM_VELOCITIES) {
                    Token::Velocity(i)
                } else if let Some(i) = in_range(DURATION_BASE, NUM_DURATIONS) {
                    Token::Duration(i)
                } else {
                    return None;
                }
            }
        })
    }

    /// The token's id, or `None` if its payload is out of range.
    pub fn id(self) -> Option<u16> {
        let offset = |base: u16, payload: u8, count: usize| {
            (usize::from(payload) < count).then_some(base + u16::from(payload))
        };
        match self {
            Token::Pad => Some(PAD_ID),
            Token::Bos => Some(BOS_ID),
            Token::Eos => Some(EOS_ID),
            Token::Bar => Some(BAR_ID),
            Token::Rest(n) => (1..=MAX_REST_BARS)
                .contains(&n)
                .then(|| REST_BASE + u16::from(n) - 1),
            Token::TimeSignature(i) => offset(TIME_SIGNATURE_BASE, i, NUM_TIME_SIGNATURES),
            Token::Tempo(i) => offset(TEMPO_BASE, i, NUM_TEMPOS),
            Token::Position(i) => offset(POSITION_BASE, i, NUM_POSITIONS),
            Token::Voice(i) => offset(VOICE_BASE, i, NUM_VOICES),
            Token::Pitch(i) => offset(PITCH_BASE, i, NUM_PITCHES),
            Token::Velocity(i) => offset(VELOCITY_BASE, i, NUM_VELOCITIES),
            Token::Duration(i) => offset(DURATION_BASE, i, NUM_DURATIONS),
        }
    }

    /// The token's kind.
    pub fn kind(self) -> TokenKind {
        match self {
            Token::Pad => TokenKind::Pad,
            Token::Bos => TokenKind::Bos,
            Token::Eos => TokenKind::Eos,
            Token::Bar => TokenKind::Bar,
            Token::Rest(_) => TokenKind::Rest,
            Token::TimeSignature(_) => TokenKind::TimeSignature,
            Token::Tempo(_) => TokenKind::Tempo,
            Token::Position(_) => TokenKind::Position,
            Token::Voice(_) => TokenKind::Voice,
            Token::Pitch(_) => TokenKind::Pitch,
            Token::Velocity(_) => TokenKind::Velocity,
            Token::Duration(_) => TokenKind::Duration,
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Token::Pad => f.write_str("Pad"),
            Token::Bos => f.write_str("Bos"),
            Token::Eos => f.write_str("Eos"),
            Token::Bar => f.write_str("Bar"),
            Token::Rest(n) => write!(f, "Rest_{n}"),
            Token::TimeSignature(i) => match TIME_SIGNATURES.get(usize::from(i)) {
                Some(ts) => write!(f, "TimeSig_{}/{}", ts.numerator, ts.denominator),
                None => write!(f, "TimeSig_?{i}"),
            },
            Token::Tempo(i) => match TEMPOS_BPM.get(usize::from(i)) {
                Some(bpm) => write!(f, "Tempo_{bpm}"),
                None => write!(f, "Tempo_?{i}"),
            },
            Token::Position(p) => write!(f, "Position_{p}"),
            Token::Voice(v) => write!(f, "Voice_{v}"),
            Token::Pitch(p) => write!(f, "Pitch_{p}"),
            Token::Velocity(b) => write!(f, "Velocity_{}", velocity_value(b)),
            Token::Duration(d) => write!(f, "Duration_{}", duration_ticks(d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_maps_to_a_token_and_back() {
        for id in 0..VOCAB_SIZE as u16 {
            let token = Token::from_id(id).expect("base id");
            assert_eq!(token.id(), Some(id), "{token}");
        }
        assert_eq!(Token::from_id(VOCAB_SIZE as u16), None);
        assert_eq!(Token::from_id(u16::MAX), None);
    }

    #[test]
    fn out_of_range_payloads_have_no_id() {
        assert_eq!(Token::Pitch(128).id(), None);
        assert_eq!(Token::Rest(0).id(), None);
        assert_eq!(Token::Rest(MAX_REST_BARS + 1).id(), None);
        assert_eq!(Token::Duration(64).id(), None);
        assert_eq!(Token::TimeSignature(28).id(), None);
    }

    #[test]
    fn defaults_point_at_four_four_and_120_bpm() {
        let ts = TIME_SIGNATURES[usize::from(DEFAULT_TIME_SIGNATURE)];
        assert_eq!((ts.numerator, ts.denominator), (4, 4));
        assert_eq!(TEMPOS_BPM[usize::from(DEFAULT_TEMPO)], 120);
        assert!(TIME_SIGNATURES
            .iter()
            .all(|ts| ts.bar_ticks() <= MAX_BAR_TICKS));
        assert_eq!(time_signature_index(3, 2), Some(2));
        assert_eq!(time_signature_index(5, 16), None);
    }

    #[test]
    fn durations_are_exact_where_documented() {
        assert!(DURATIONS.windows(2).all(|w| w[0] < w[1]));
        for t in 1..=24 {
            assert_eq!(duration_ticks(duration_class(t)), t);
        }
        for t in (24..=48).step_by(3) {
            assert_eq!(duration_ticks(duration_class(t)), t);
        }
        for t in (48..=96).step_by(6) {
            assert_eq!(duration_ticks(duration_class(t)), t);
        }
        assert_eq!(duration_class(0), 0);
        assert_eq!(duration_ticks(duration_class(25)), 24); // tie goes to the shorter
        assert_eq!(duration_ticks(duration_class(26)), 27);
        assert_eq!(duration_ticks(duration_class(100_000)), 768);
    }

    #[test]
    fn velocity_bins_round_trip_through_their_values() {
        for v in 1..=127u8 {
            let bin = velocity_bin(v);
            assert!(usize::from(bin) < NUM_VELOCITIES);
            assert_eq!(velocity_bin(velocity_value(bin)), bin);
            assert!(velocity_value(bin).abs_diff(v) <= 2);
        }
    }

    #[test]
    fn tempo_classes_pick_the_nearest_in_log_space() {
        for (i, &bpm) in TEMPOS_BPM.iter().enumerate() {
            assert_eq!(tempo_class(60_000_000 / u32::from(bpm)), i as u8);
        }
        assert_eq!(TEMPOS_BPM[tempo_class(60_000_000 / 98) as usize], 100); // sqrt(96*100)=97.98
        assert_eq!(TEMPOS_BPM[tempo_class(60_000_000 / 97) as usize], 96);
        assert_eq!(tempo_class(u32::MAX), 0);
        assert_eq!(tempo_class(1), NUM_TEMPOS as u8 - 1);
    }
}
