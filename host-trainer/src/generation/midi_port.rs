//! Where the player sends MIDI: a small trait over an output port, a
//! recording port that keeps each message with the instant it was sent
//! (tests and `play --record`), and — with the `live` feature — a `midir`
//! port (ALSA on Linux, CoreMIDI on macOS, WinMM on Windows).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// A MIDI output.
pub trait MidiPort {
    /// Send one complete MIDI message (status byte first, no running status).
    fn send(&mut self, message: &[u8]) -> Result<()>;
}

/// A message as the recording port received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// When `send` was called.
    pub at: Instant,
    /// The message's bytes.
    pub bytes: Vec<u8>,
}

/// A port that records what it is sent, with the wall-clock instant.
#[derive(Clone, Debug, Default)]
pub struct RecordingPort {
    /// Messages in the order they were sent.
    pub messages: Vec<Recorded>,
}

impl MidiPort for RecordingPort {
    fn send(&mut self, message: &[u8]) -> Result<()> {
        let at = Instant::now();
        if message.is_empty() {
            bail!("empty MIDI message");
        }
        self.messages.push(Recorded {
            at,
            bytes: message.to_vec(),
        });
        Ok(())
    }
}

/// First line of a recording log.
pub const LOG_HEADER: &str =
    "# host-trainer play --record: seconds since the first message, MIDI bytes in hex";

impl RecordingPort {
    /// The recording as text: [`LOG_HEADER`], then one line per message,
    /// seconds since the first message (6 decimals) and its bytes in hex,
    /// e.g. `0.520833 90 3c 50`.
    pub fn log(&self) -> String {
        let origin = self.messages.first().map(|m| m.at);
        let mut text = String::from(LOG_HEADER);
        text.push('\n');
        for m in &self.messages {
            let seconds = origin.map_or(0.0, |o| m.at.duration_since(o).as_secs_f64());
            text.push_str(&format!("{seconds:.6}"));
            for b in &m.bytes {
                text.push_str(&format!(" {b:02x}"));
            }
            text.push('\n');
        }
        text
    }

    /// Write [`RecordingPort::log`] to `path` (atomically).
    pub fn write_log(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_atomic(path, self.log().as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// Read a recording log back: (seconds, bytes) per message.
pub fn parse_log(text: &str) -> Result<Vec<(f64, Vec<u8>)>> {
    let mut messages = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        let seconds: f64 = fields
            .next()
            .unwrap_or_default()
            .parse()
            .with_context(|| format!("line {}: bad time", i + 1))?;
        let bytes = fields
            .map(|f| u8::from_str_radix(f, 16))
            .collect::<Result<Vec<u8>, _>>()
            .with_context(|| format!("line {}: bad byte", i + 1))?;
        messages.push((seconds, bytes));
    }
    Ok(messages)
}

/// Ports through `midir`.
#[cfg(feature = "live")]
pub mod live {
    use anyhow::{anyhow, bail, Result};
    use midir::{MidiOutput, MidiOutputConnection};

    use super::MidiPort;

    /// The client name Kantor shows to other MIDI programs.
    pub const CLIENT_NAME: &str = "Kantor";

    /// A connected `midir` output.
    pub struct MidirPort {
        connection: MidiOutputConnection,
        /// The port's name.
        pub name: String,
    }

    impl std::fmt::Debug for MidirPort {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("MidirPort")
                .field("name", &self.name)
                .finish()
        }
    }

    impl MidiPort for MidirPort {
        fn send(&mut self, message: &[u8]) -> Result<()> {
            self.connection
                .send(message)
                .map_err(|e| anyhow!("sending to {}: {e}", self.name))
        }
    }

    fn output() -> Result<MidiOutput> {
        MidiOutput::new(CLIENT_NAME).map_err(|e| {
            anyhow!(
                "cannot open the system's MIDI output ({e}); on Linux this needs the ALSA \
                 sequencer (/dev/snd/seq, kernel module snd-seq)"
            )
        })
    }

    /// Names of the output ports, in the system's order.
    pub fn port_names() -> Result<Vec<String>> {
        let out = output()?;
        Ok(out
            .ports()
            .iter()
            .map(|p| {
                out.port_name(p)
                    .unwrap_or_else(|_| String::from("(unnamed)"))
            })
            .collect())
    }

    /// Connect to the output port whose name contains `name` (case-insensitive),
    /// or whose number in [`port_names`] is `name`.
    pub fn connect(name: &str) -> Result<MidirPort> {
        let out = output()?;
        let ports = out.ports();
        let names: Vec<String> = ports
            .iter()
            .map(|p| out.port_name(p).unwrap_or_default())
            .collect();
        let wanted = name.to_lowercase();
        let matches: Vec<usize> = match name.parse::<usize>() {
            Ok(i) if i < ports.len() => vec![i],
            _ => (0..ports.len())
                .filter(|&i| names[i].to_lowercase().contains(&wanted))
                .collect(),
        };
        let list = if names.is_empty() {
            String::from("there are no MIDI output ports")
        } else {
            format!("the ports are: {}", names.join(", "))
        };
        let index = match matches.as_slice() {
            [i] => *i,
            [] => bail!("no MIDI output port matches {name:?}; {list}"),
            _ => bail!("several MIDI output ports match {name:?}; {list}"),
        };
        let connection = out
            .connect(&ports[index], "Kantor out")
            .map_err(|e| anyhow!("connecting to {}: {e}", names[index]))?;
        Ok(MidirPort {
            connection,
            name: names[index].clone(),
        })
    }

    /// A virtual output port named `name` that other programs (a DAW) connect to.
    #[cfg(unix)]
    pub fn create_virtual(name: &str) -> Result<MidirPort> {
        use midir::os::unix::VirtualOutput;
        let connection = output()?
            .create_virtual(name)
            .map_err(|e| anyhow!("creating the virtual port {name:?}: {e}"))?;
        Ok(MidirPort {
            connection,
            name: name.to_string(),
        })
    }

    /// Virtual ports need a Unix MIDI system.
    #[cfg(not(unix))]
    pub fn create_virtual(_name: &str) -> Result<MidirPort> {
        bail!("virtual MIDI ports need Linux (ALSA) or macOS (CoreMIDI); use --port")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_reads_back() {
        let mut port = RecordingPort::default();
        port.send(&[0xfa]).unwrap();
        port.send(&[0x90, 60, 80]).unwrap();
        assert!(port.send(&[]).is_err());
        let back = parse_log(&port.log()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0], (0.0, vec![0xfa]));
        assert_eq!(back[1].1, vec![0x90, 60, 80]);
        assert!(back[1].0 >= 0.0);
    }
}
