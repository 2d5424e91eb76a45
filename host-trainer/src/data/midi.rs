//! Standard MIDI Files in and out, with `midly`.
//!
//! Reading accepts format 0 and 1 with metrical timing (format 2 and SMPTE
//! timing are clear errors), running status, note-on with velocity 0 as
//! note-off, tempo and time-signature changes in any track. Overlapping notes
//! of one pitch on one channel of one track are paired first-in, first-out: a
//! note-off ends the earliest sounding one. A note still sounding at the end of
//! its track ends there. Notes on the drum channel (10) are ignored unless
//! asked for.
//!
//! A truncated or corrupt file is an error, never a silently shortened piece:
//! every chunk must fit in the file and every track must parse to its end.
//! Harmless deviations that other tools accept (a header that declares fewer
//! tracks than the file holds, a few junk bytes after the last chunk) are tolerated and counted in
//! the [`ReadReport`].
//!
//! Each (track, channel) pair with notes becomes a voice, in track order (at
//! most 16; the rest share voice 15).

use std::collections::{BTreeMap, HashMap, VecDeque};

use kantor_engine::decoder::Note;
use kantor_engine::vocab::{
    duration_class, duration_ticks, tempo_class, tempo_micros, velocity_bin, velocity_value,
    NUM_VOICES, TICKS_PER_QUARTER, TIME_SIGNATURES,
};
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use crate::piece::{align_meters, supported_meter, MeterChange, Piece, TempoChange, VoiceInfo};

/// Largest MIDI file we read (64 MiB).
pub const MAX_FILE_BYTES: usize = 64 << 20;
/// Longest piece we accept, in grid ticks (about 80,000 bars of 4/4).
pub const MAX_GRID_TICKS: u64 = 4_000_000;
/// Ticks per quarter note of the files we write (40 per grid tick).
pub const WRITE_TICKS_PER_QUARTER: u16 = 480;
/// The General MIDI drum channel (channel 10, zero-based 9).
pub const DRUM_CHANNEL: u8 = 9;

/// Why a MIDI file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MidiError {
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("file is {bytes} bytes; the limit is {MAX_FILE_BYTES}")]
    TooLarge {
        /// Size of the file.
        bytes: usize,
    },
    /// midly could not parse the bytes.
    #[error("not a valid MIDI file: {0}")]
    Parse(#[from] midly::Error),
    /// A chunk claims more bytes than the file has left.
    #[error(
        "file is truncated: chunk {chunk} declares {declared} bytes but only {available} remain"
    )]
    Truncated {
        /// Index of the chunk (0 is the header).
        chunk: usize,
        /// Length the chunk declares.
        declared: usize,
        /// Bytes left in the file.
        available: usize,
    },
    /// The header declares more tracks than the file holds.
    #[error("file is truncated: the header declares {declared} tracks, the file holds {found}")]
    MissingTracks {
        /// Tracks the header declares.
        declared: u16,
        /// Tracks present.
        found: usize,
    },
    /// A track's events stop parsing before the track ends.
    #[error("track {track} is corrupt: cannot parse the event at byte {offset} of {len}")]
    CorruptTrack {
        /// Index of the track.
        track: usize,
        /// Offset of the bad event within the track's data.
        offset: usize,
        /// Length of the track's data.
        len: usize,
    },
    /// A RIFF container that is not a well-formed `RMID` file.
    #[error("RIFF container: {0}")]
    Riff(&'static str),
    /// Format 2 (independent sequences) is not supported.
    #[error("MIDI format 2 (sequential tracks) is not supported")]
    SequentialFormat,
    /// SMPTE (timecode) timing is not supported.
    #[error("SMPTE timecode timing is not supported; only ticks per quarter note")]
    TimecodeTiming,
    /// Zero ticks per quarter note.
    #[error("the header gives 0 ticks per quarter note")]
    ZeroTicksPerQuarter,
    /// Something starts later than [`MAX_GRID_TICKS`].
    #[error("piece is too long ({quarters} quarter notes; the limit is {})", MAX_GRID_TICKS / TICKS_PER_QUARTER as u64)]
    TooLong {
        /// Time of the late event in quarter notes.
        quarters: u64,
    },
}

/// Options for reading MIDI.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    /// Keep notes on the drum channel (10).
    pub include_drums: bool,
}

/// A note as read from the file, in file ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawNote {
    /// Onset in file ticks.
    pub start: u64,
    /// End in file ticks.
    pub end: u64,
    /// MIDI pitch.
    pub pitch: u8,
    /// MIDI velocity (1–127).
    pub velocity: u8,
    /// Voice the note belongs to.
    pub voice: u8,
}

/// Counts of things the reader skipped or repaired, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Notes on the drum channel that were left out.
    pub ignored_drum_notes: usize,
    /// Note-offs with no sounding note to end.
    pub unmatched_note_offs: usize,
    /// Notes that were still sounding at the end of their track.
    pub unterminated_notes: usize,
    /// The header's track count, when the file holds more tracks than that.
    pub declared_tracks: Option<u16>,
    /// Junk bytes after the last chunk.
    pub trailing_bytes: usize,
}

/// The Standard MIDI File inside a RIFF `RMID` container (its `data`
/// chunk), or `bytes` itself when it is not one.
fn unwrap_rmid(bytes: &[u8]) -> Result<&[u8], MidiError> {
    if !bytes.starts_with(b"RIFF") {
        return Ok(bytes);
    }
    if bytes.get(8..12) != Some(b"RMID".as_slice()) {
        return Err(MidiError::Riff("not an RMID file"));
    }
    let mut rest = bytes.get(12..).unwrap_or(&[]);
    while let (Some(id), Some(&[a, b, c, d])) = (rest.get(..4), rest.get(4..8)) {
        let len = u32::from_le_bytes([a, b, c, d]) as usize;
        let body = len
            .checked_add(8)
            .and_then(|end| rest.get(8..end))
            .ok_or(MidiError::Riff("a chunk runs past the end of the file"))?;
        if id == b"data" {
            return Ok(body);
        }
        // RIFF chunks are padded to an even length.
        rest = rest.get(8 + len + (len & 1)..).unwrap_or(&[]);
    }
    Err(MidiError::Riff("no data chunk"))
}

/// Walk the chunk structure: every chunk must fit in the file. Returns the
/// number of junk bytes after the last chunk (fewer than a chunk header, and
/// not the start of a track header, which would mean a lost track).
fn check_chunks(bytes: &[u8]) -> Result<usize, MidiError> {
    let mut rest = bytes;
    let mut chunk = 0;
    while !rest.is_empty() {
        if rest.len() < 8 {
            if b"MTrk".starts_with(&rest[..rest.len().min(4)]) {
                return Err(MidiError::Truncated {
                    chunk,
                    declared: 8,
                    available: rest.len(),
                });
            }
            return Ok(rest.len());
        }
        let declared = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let available = rest.len() - 8;
        if declared > available {
            return Err(MidiError::Truncated {
                chunk,
                declared,
                available,
            });
        }
        // SMPTE timing is rejected anyway; reject it here, in every header
        // chunk midly would read, because midly's `-(fps as i8)` overflows (a
        // panic with overflow checks) on fps −128.
        if &rest[..4] == b"MThd" && declared >= 6 && rest[12] & 0x80 != 0 {
            return Err(MidiError::TimecodeTiming);
        }
        rest = &rest[8 + declared..];
        chunk += 1;
    }
    Ok(0)
}

/// The musical content of a MIDI file, in file ticks.
#[derive(Clone, Debug)]
pub struct MidiScore {
    /// Ticks per quarter note.
    pub ticks_per_quarter: u16,
    /// Notes by onset.
    pub notes: Vec<RawNote>,
    /// Tempo changes: (tick, microseconds per quarter note).
    pub tempos: Vec<(u64, u32)>,
    /// Time-signature changes: (tick, numerator, denominator).
    pub time_signatures: Vec<(u64, u8, u32)>,
    /// Per voice: channel, program and track name.
    pub voices: Vec<VoiceInfo>,
    /// What was skipped or repaired.
    pub report: ReadReport,
}

/// Parse a Standard MIDI File.
pub fn read_midi(bytes: &[u8], options: ReadOptions) -> Result<MidiScore, MidiError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(MidiError::TooLarge { bytes: bytes.len() });
    }
    let bytes = unwrap_rmid(bytes)?;
    let trailing_bytes = check_chunks(bytes)?;
    let (header, tracks) = midly::parse(bytes)?;
    if header.format == Format::Sequential {
        return Err(MidiError::SequentialFormat);
    }
    let ticks_per_quarter = match header.timing {
        Timing::Metrical(t) if t.as_int() == 0 => return Err(MidiError::ZeroTicksPerQuarter),
        Timing::Metrical(t) => t.as_int(),
        Timing::Timecode(..) => return Err(MidiError::TimecodeTiming),
    };
    // midly checked the header chunk, which holds (format, tracks, division).
    let declared_tracks = bytes
        .get(10..12)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));

    let mut content = TrackContent {
        report: ReadReport {
            trailing_bytes,
            ..ReadReport::default()
        },
        ..TrackContent::default()
    };
    let mut track_count = 0;
    for (track_index, track) in tracks.enumerate() {
        track_count += 1;
        content.read_track(track_index, track?, options)?;
    }
    // Fewer tracks than declared is what a file cut at a chunk boundary looks like.
    if usize::from(declared_tracks) > track_count {
        return Err(MidiError::MissingTracks {
            declared: declared_tracks,
            found: track_count,
        });
    }
    if usize::from(declared_tracks) < track_count {
        content.report.declared_tracks = Some(declared_tracks);
    }
    Ok(content.into_score(ticks_per_quarter))
}

/// Notes sounding on a track: per (channel, pitch), first in first out,
/// their onsets and velocities.
type Sounding = HashMap<(u8, u8), VecDeque<(u64, u8)>>;

/// What the tracks of a file hold, notes keyed by (track, channel) until
/// voices are assigned.
#[derive(Default)]
struct TrackContent {
    report: ReadReport,
    tempos: Vec<(u64, u32)>,
    time_signatures: Vec<(u64, u8, u32)>,
    keyed_notes: Vec<((usize, u8), RawNote)>,
    names: HashMap<usize, String>,
    programs: HashMap<(usize, u8), u8>,
}

impl TrackContent {
    /// Read one track's events; notes still sounding at its end end there.
    fn read_track(
        &mut self,
        track_index: usize,
        mut events: midly::EventIter<'_>,
        options: ReadOptions,
    ) -> Result<(), MidiError> {
        let len = events.unread().len();
        let mut tick = 0u64;
        let mut sounding = Sounding::new();
        loop {
            let left = events.unread().len();
            let event = match events.next() {
                Some(event) => event?,
                // midly ends a track early (silently) when an event does not parse.
                None if left > 0 => {
                    return Err(MidiError::CorruptTrack {
                        track: track_index,
                        offset: len - left,
                        len,
                    })
                }
                None => break,
            };
            tick += u64::from(event.delta.as_int());
            match event.kind {
                TrackEventKind::Midi { channel, message } => {
                    let key = (track_index, channel.as_int());
                    self.midi(key, tick, message, &mut sounding, options);
                }
                TrackEventKind::Meta(MetaMessage::Tempo(t)) => {
                    self.tempos.push((tick, t.as_int().max(1)));
                }
                TrackEventKind::Meta(MetaMessage::TimeSignature(n, d, _, _)) => {
                    let denominator = 1u32.checked_shl(u32::from(d)).unwrap_or(0);
                    self.time_signatures.push((tick, n, denominator));
                }
                TrackEventKind::Meta(MetaMessage::TrackName(name)) => {
                    self.names
                        .entry(track_index)
                        .or_insert_with(|| String::from_utf8_lossy(name).trim().to_string());
                }
                _ => {}
            }
        }
        for ((channel, pitch), open) in sounding {
            for (start, velocity) in open {
                self.report.unterminated_notes += 1;
                self.keyed_notes.push((
                    (track_index, channel),
                    RawNote {
                        start,
                        end: tick.max(start),
                        pitch,
                        velocity,
                        voice: 0,
                    },
                ));
            }
        }
        Ok(())
    }

    /// One channel message of (track, channel) `key` at `tick`.
    fn midi(
        &mut self,
        key: (usize, u8),
        tick: u64,
        message: MidiMessage,
        sounding: &mut Sounding,
        options: ReadOptions,
    ) {
        let channel = key.1;
        let drums = channel == DRUM_CHANNEL && !options.include_drums;
        match message {
            MidiMessage::NoteOn { key: k, vel } if vel.as_int() > 0 => {
                if drums {
                    self.report.ignored_drum_notes += 1;
                } else {
                    sounding
                        .entry((channel, k.as_int()))
                        .or_default()
                        .push_back((tick, vel.as_int()));
                }
            }
            MidiMessage::NoteOn { key: k, .. } | MidiMessage::NoteOff { key: k, .. } => {
                if drums {
                    return;
                }
                let pitch = k.as_int();
                match sounding
                    .get_mut(&(channel, pitch))
                    .and_then(VecDeque::pop_front)
                {
                    Some((start, velocity)) => self.keyed_notes.push((
                        key,
                        RawNote {
                            start,
                            end: tick,
                            pitch,
                            velocity,
                            voice: 0,
                        },
                    )),
                    None => self.report.unmatched_note_offs += 1,
                }
            }
            MidiMessage::ProgramChange { program } => {
                self.programs.entry(key).or_insert(program.as_int());
            }
            _ => {}
        }
    }

    /// One voice per (track, channel), in track order; everything sorted by time.
    fn into_score(self, ticks_per_quarter: u16) -> MidiScore {
        let TrackContent {
            report,
            mut tempos,
            mut time_signatures,
            keyed_notes,
            names,
            programs,
        } = self;
        let keys: BTreeMap<(usize, u8), ()> = keyed_notes.iter().map(|(k, _)| (*k, ())).collect();
        let mut voice_of = HashMap::new();
        let mut voices = Vec::new();
        for (i, &(track, channel)) in keys.keys().enumerate() {
            let voice = i.min(NUM_VOICES - 1) as u8;
            voice_of.insert((track, channel), voice);
            if usize::from(voice) == voices.len() {
                voices.push(VoiceInfo {
                    channel,
                    program: programs.get(&(track, channel)).copied(),
                    name: names.get(&track).filter(|n| !n.is_empty()).cloned(),
                });
            }
        }
        let mut notes: Vec<RawNote> = keyed_notes
            .into_iter()
            .map(|(key, note)| RawNote {
                voice: voice_of[&key],
                ..note
            })
            .collect();
        notes.sort_by_key(|n| (n.start, n.voice, n.pitch, n.end));
        tempos.sort_by_key(|t| t.0);
        time_signatures.sort_by_key(|t| t.0);
        MidiScore {
            ticks_per_quarter,
            notes,
            tempos,
            time_signatures,
            voices,
            report,
        }
    }
}

impl MidiScore {
    /// File ticks → grid ticks, rounded to the nearest.
    fn grid(&self, ticks: u64) -> Result<u32, MidiError> {
        let tpq = u64::from(self.ticks_per_quarter);
        let grid = (ticks * u64::from(TICKS_PER_QUARTER) + tpq / 2) / tpq;
        if grid > MAX_GRID_TICKS {
            return Err(MidiError::TooLong {
                quarters: ticks / tpq,
            });
        }
        Ok(grid as u32)
    }

    /// The note as the vocabulary keeps it: onset on the grid, duration
    /// class, velocity bin. This is the documented quantisation, and what a
    /// round trip through tokens must give back exactly.
    pub fn quantise_note(&self, note: &RawNote) -> Result<Note, MidiError> {
        let onset = self.grid(note.start)?;
        let length = self.grid(note.end - note.start)?;
        Ok(Note {
            onset,
            voice: note.voice,
            pitch: note.pitch,
            duration: duration_ticks(duration_class(length)),
            velocity: velocity_value(velocity_bin(note.velocity)),
        })
    }

    /// The piece on the vocabulary's grid.
    pub fn to_piece(&self) -> Result<Piece, MidiError> {
        let notes = self
            .notes
            .iter()
            .map(|n| self.quantise_note(n))
            .collect::<Result<Vec<_>, _>>()?;
        let tempos = self
            .tempos
            .iter()
            .map(|&(tick, micros)| {
                Ok(TempoChange {
                    tick: self.grid(tick)?,
                    tempo: tempo_class(micros),
                })
            })
            .collect::<Result<Vec<_>, MidiError>>()?;
        let meters = self
            .time_signatures
            .iter()
            .map(|&(tick, numerator, denominator)| {
                Ok(MeterChange {
                    tick: self.grid(tick)?,
                    meter: supported_meter(numerator, denominator),
                })
            })
            .collect::<Result<Vec<_>, MidiError>>()?;
        Ok(Piece::new(
            notes,
            tempos,
            align_meters(meters),
            self.voices.clone(),
        ))
    }
}

/// Read a MIDI file straight to a piece on the grid.
pub fn read_piece(bytes: &[u8], options: ReadOptions) -> Result<Piece, MidiError> {
    read_midi(bytes, options)?.to_piece()
}

/// MIDI channel for a voice with no source information: voices 0–8 on
/// channels 1–9, voices 9–15 on channels 11–16 (skipping drums; 15 shares 16).
pub fn default_channel(voice: u8) -> u8 {
    match voice {
        0..=8 => voice,
        9..=14 => voice + 1,
        _ => 15,
    }
}

/// Write a piece as a format-1 Standard MIDI File: a conductor track with
/// tempo and meter, then one track per voice.
pub fn write_midi(piece: &Piece) -> Vec<u8> {
    let scale = u64::from(WRITE_TICKS_PER_QUARTER) / u64::from(TICKS_PER_QUARTER);
    let header = Header::new(
        Format::Parallel,
        Timing::Metrical(u15::new(WRITE_TICKS_PER_QUARTER)),
    );
    let mut smf = Smf::new(header);
    smf.tracks.push(to_track(conductor_events(piece, scale)));
    let names: Vec<String> = (0..NUM_VOICES as u8)
        .map(|v| {
            piece
                .voices
                .get(usize::from(v))
                .and_then(|i| i.name.clone())
                .unwrap_or_else(|| format!("Voice {}", v + 1))
        })
        .collect();
    let used: std::collections::BTreeSet<u8> = piece.notes.iter().map(|n| n.voice).collect();
    for voice in used {
        let name = names[usize::from(voice)].as_bytes();
        smf.tracks
            .push(to_track(voice_events(piece, voice, name, scale)));
    }
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes)
        .expect("writing MIDI to a Vec cannot fail");
    bytes
}

/// The conductor track: meters (order 0) and tempos (order 1).
fn conductor_events(piece: &Piece, scale: u64) -> Vec<(u64, u8, TrackEventKind<'static>)> {
    let mut conductor = Vec::new();
    for m in &piece.meters {
        let ts = TIME_SIGNATURES[usize::from(m.meter)];
        let clocks = (96 / ts.denominator).max(1);
        conductor.push((
            u64::from(m.tick) * scale,
            0,
            TrackEventKind::Meta(MetaMessage::TimeSignature(
                ts.numerator,
                ts.denominator.trailing_zeros() as u8,
                clocks,
                8,
            )),
        ));
    }
    for t in &piece.tempos {
        conductor.push((
            u64::from(t.tick) * scale,
            1,
            TrackEventKind::Meta(MetaMessage::Tempo(u24::new(tempo_micros(t.tempo)))),
        ));
    }
    conductor
}

/// One voice's track: its name, its program, then its notes (at one tick,
/// note-offs before note-ons).
fn voice_events<'a>(
    piece: &Piece,
    voice: u8,
    name: &'a [u8],
    scale: u64,
) -> Vec<(u64, u8, TrackEventKind<'a>)> {
    let info = piece.voices.get(usize::from(voice));
    let channel = u4::new(info.map_or(default_channel(voice), |i| i.channel) & 0x0f);
    let mut events = vec![(0, 0, TrackEventKind::Meta(MetaMessage::TrackName(name)))];
    if let Some(program) = info.and_then(|i| i.program) {
        events.push((
            0,
            1,
            TrackEventKind::Midi {
                channel,
                message: MidiMessage::ProgramChange {
                    program: u7::new(program & 0x7f),
                },
            },
        ));
    }
    for n in piece.notes.iter().filter(|n| n.voice == voice) {
        let key = u7::new(n.pitch & 0x7f);
        let vel = u7::new(n.velocity.clamp(1, 127));
        let on = u64::from(n.onset) * scale;
        let off = u64::from(n.onset + n.duration) * scale;
        let message = |message| TrackEventKind::Midi { channel, message };
        events.push((on, 3, message(MidiMessage::NoteOn { key, vel })));
        events.push((
            off,
            2,
            message(MidiMessage::NoteOff {
                key,
                vel: u7::new(0),
            }),
        ));
    }
    events
}

/// Sort (tick, order, event) triples into a track with delta times and an end marker.
fn to_track(mut events: Vec<(u64, u8, TrackEventKind<'_>)>) -> Vec<TrackEvent<'_>> {
    events.sort_by_key(|&(tick, order, _)| (tick, order));
    let mut track = Vec::with_capacity(events.len() + 1);
    let mut last = 0u64;
    for (tick, _, kind) in events {
        track.push(TrackEvent {
            delta: u28::new(delta(tick - last)),
            kind,
        });
        last = tick;
    }
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    track
}

/// A delta time fits in 28 bits: pieces are at most [`MAX_GRID_TICKS`] long,
/// i.e. 160 M file ticks < 2^28.
fn delta(ticks: u64) -> u32 {
    debug_assert!(ticks < 1 << 28);
    ticks.min((1 << 28) - 1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a format-1 file from per-track (delta, event) lists.
    fn smf_bytes(tpq: u16, tracks: Vec<Vec<(u32, TrackEventKind<'static>)>>) -> Vec<u8> {
        let mut smf = Smf::new(Header::new(
            Format::Parallel,
            Timing::Metrical(u15::new(tpq)),
        ));
        for t in tracks {
            let mut track: Vec<TrackEvent> = t
                .into_iter()
                .map(|(d, kind)| TrackEvent {
                    delta: u28::new(d),
                    kind,
                })
                .collect();
            track.push(TrackEvent {
                delta: u28::new(0),
                kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
            });
            smf.tracks.push(track);
        }
        let mut out = Vec::new();
        smf.write_std(&mut out).unwrap();
        out
    }

    fn on(ch: u8, key: u8, vel: u8) -> TrackEventKind<'static> {
        TrackEventKind::Midi {
            channel: u4::new(ch),
            message: MidiMessage::NoteOn {
                key: u7::new(key),
                vel: u7::new(vel),
            },
        }
    }

    fn off(ch: u8, key: u8) -> TrackEventKind<'static> {
        TrackEventKind::Midi {
            channel: u4::new(ch),
            message: MidiMessage::NoteOff {
                key: u7::new(key),
                vel: u7::new(64),
            },
        }
    }

    #[test]
    fn pairs_overlapping_same_pitch_notes_first_in_first_out() {
        let bytes = smf_bytes(
            480,
            vec![vec![
                (0, on(0, 60, 100)),
                (240, on(0, 60, 80)),
                (240, on(0, 60, 0)), // velocity 0 = note-off: ends the first
                (240, off(0, 60)),
                (0, off(0, 61)), // stray
            ]],
        );
        let score = read_midi(&bytes, ReadOptions::default()).unwrap();
        let spans: Vec<_> = score
            .notes
            .iter()
            .map(|n| (n.start, n.end, n.velocity))
            .collect();
        assert_eq!(spans, vec![(0, 480, 100), (240, 720, 80)]);
        assert_eq!(score.report.unmatched_note_offs, 1);
    }

    #[test]
    fn reads_the_file_inside_a_riff_rmid_container() {
        let smf = smf_bytes(96, vec![vec![(0, on(0, 60, 100)), (96, off(0, 60))]]);
        let mut chunks = b"RMID".to_vec();
        chunks.extend_from_slice(b"INFO\x03\0\0\0abc\0"); // odd length: padded
        chunks.extend_from_slice(b"data");
        chunks.extend_from_slice(&(smf.len() as u32).to_le_bytes());
        chunks.extend_from_slice(&smf);
        let mut riff = b"RIFF".to_vec();
        riff.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
        riff.extend_from_slice(&chunks);
        let plain = read_midi(&smf, ReadOptions::default()).unwrap();
        let wrapped = read_midi(&riff, ReadOptions::default()).unwrap();
        assert_eq!(wrapped.notes, plain.notes);
        assert_eq!(wrapped.notes.len(), 1);
        // A data chunk that runs past the end, or none at all, is an error.
        let cut = &riff[..riff.len() - 1];
        assert!(matches!(
            read_midi(cut, ReadOptions::default()),
            Err(MidiError::Riff(_))
        ));
        assert!(matches!(
            read_midi(b"RIFF\x04\0\0\0RMID", ReadOptions::default()),
            Err(MidiError::Riff("no data chunk"))
        ));
        assert!(matches!(
            read_midi(b"RIFF\x04\0\0\0WAVE", ReadOptions::default()),
            Err(MidiError::Riff(_))
        ));
    }

    #[test]
    fn drums_are_ignored_unless_asked_and_tracks_become_voices() {
        let bytes = smf_bytes(
            96,
            vec![
                vec![(0, on(9, 36, 100)), (96, off(9, 36))],
                vec![(0, on(0, 72, 100)), (96, off(0, 72))],
                vec![(0, on(0, 48, 100)), (96, off(0, 48))],
            ],
        );
        let score = read_midi(&bytes, ReadOptions::default()).unwrap();
        assert_eq!(score.report.ignored_drum_notes, 1);
        let voices: Vec<_> = score.notes.iter().map(|n| (n.pitch, n.voice)).collect();
        assert_eq!(voices, vec![(72, 0), (48, 1)]);
        let with_drums = read_midi(
            &bytes,
            ReadOptions {
                include_drums: true,
            },
        )
        .unwrap();
        assert_eq!(with_drums.notes.len(), 3);
        assert_eq!(with_drums.voices[0].channel, 9);
    }

    #[test]
    fn unterminated_notes_end_with_their_track() {
        let bytes = smf_bytes(96, vec![vec![(0, on(0, 60, 100)), (192, on(0, 62, 0))]]);
        let score = read_midi(&bytes, ReadOptions::default()).unwrap();
        assert_eq!(score.report.unterminated_notes, 1);
        assert_eq!((score.notes[0].start, score.notes[0].end), (0, 192));
    }

    #[test]
    fn rejects_format_2_smpte_and_zero_division() {
        let mut bytes = smf_bytes(96, vec![vec![]]);
        bytes[9] = 2; // format 2
        assert!(matches!(
            read_midi(&bytes, ReadOptions::default()),
            Err(MidiError::SequentialFormat)
        ));
        let mut bytes = smf_bytes(96, vec![vec![]]);
        bytes[12] = 0xE7; // -25 fps
        bytes[13] = 40;
        assert!(matches!(
            read_midi(&bytes, ReadOptions::default()),
            Err(MidiError::TimecodeTiming)
        ));
        // fps −128, in the header or in a second header chunk: found by the
        // midi_loader fuzz target (midly negates it).
        bytes[12] = 0x80;
        assert!(matches!(
            read_midi(&bytes, ReadOptions::default()),
            Err(MidiError::TimecodeTiming)
        ));
        let mut bytes = smf_bytes(96, vec![vec![]]);
        bytes.extend_from_slice(b"MThd\0\0\0\x06\0\0\0\x01\x80\x28");
        assert!(matches!(
            read_midi(&bytes, ReadOptions::default()),
            Err(MidiError::TimecodeTiming)
        ));
        // … and inside a RIFF (RMID) container.
        let mut riff = b"RIFF\x1a\0\0\0RMIDdata\x0e\0\0\0".to_vec();
        riff.extend_from_slice(b"MThd\0\0\0\x06\0\0\0\x01\x80\x28");
        assert!(matches!(
            read_midi(&riff, ReadOptions::default()),
            Err(MidiError::TimecodeTiming)
        ));
        let mut bytes = smf_bytes(96, vec![vec![]]);
        bytes[12] = 0;
        bytes[13] = 0;
        assert!(matches!(
            read_midi(&bytes, ReadOptions::default()),
            Err(MidiError::ZeroTicksPerQuarter)
        ));
    }

    #[test]
    fn truncated_files_are_errors_not_shorter_pieces() {
        let bytes = smf_bytes(
            96,
            vec![vec![
                (0, on(0, 60, 100)),
                (96, off(0, 60)),
                (0, on(0, 62, 100)),
                (96, off(0, 62)),
            ]],
        );
        for cut in [5, 14, 20, bytes.len() - 3] {
            assert!(
                read_midi(&bytes[..cut], ReadOptions::default()).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn absurdly_late_events_are_too_long() {
        let bytes = smf_bytes(
            1,
            vec![vec![(0x0FFF_FFFF, on(0, 60, 100)), (1, off(0, 60))]],
        );
        let score = read_midi(&bytes, ReadOptions::default()).unwrap();
        assert!(matches!(score.to_piece(), Err(MidiError::TooLong { .. })));
    }

    #[test]
    fn writes_what_it_reads() {
        let bytes = smf_bytes(
            480,
            vec![
                vec![(
                    0,
                    TrackEventKind::Meta(MetaMessage::Tempo(u24::new(600_000))),
                )],
                vec![
                    (0, on(3, 60, 100)),
                    (160, off(3, 60)),
                    (0, on(3, 64, 50)),
                    (1920, off(3, 64)),
                ],
            ],
        );
        let piece = read_piece(&bytes, ReadOptions::default()).unwrap();
        assert_eq!(piece.voices[0].channel, 3);
        let again = read_piece(&write_midi(&piece), ReadOptions::default()).unwrap();
        assert_eq!(again.notes, piece.notes);
        assert_eq!(again.tempos, piece.tempos);
        assert_eq!(again.meters, piece.meters);
        assert_eq!(again.voices[0].channel, 3);
    }
}
