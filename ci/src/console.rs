//! A VM's serial console. QEMU serves it on a unix socket and waits for us before it starts the
//! guest; a thread copies everything the socket delivers into the log file, and waiting polls
//! that file. (QEMU's own `logfile=` is not used: when the socket is momentarily full, QEMU logs
//! a buffer and the serial device later sends it again, so the log shows doubled bytes.)

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::io;
use crate::LabError;

const POLL: Duration = Duration::from_millis(100);

/// Connects to the console `socket` and copies what it delivers into `log` from a thread of its
/// own (which ends when QEMU closes the socket: the VM stopped); returns the stream to type on.
/// Each piece's arrival is noted in the log's `times` file beside it (`END_OFFSET UNIX_MS`
/// lines), so that when a line appeared can be told afterwards ([`Console::arrival_ms`]).
fn record(socket: &Path, log_path: &Path, mut log: std::fs::File) -> Result<UnixStream, LabError> {
    use std::io::Read;
    let stream = UnixStream::connect(socket).map_err(io(socket))?;
    let mut output = stream.try_clone().map_err(io(socket))?;
    let times_path = times_path(log_path);
    let mut times =
        std::fs::OpenOptions::new().append(true).create(true).open(&times_path).map_err(io(&times_path))?;
    let mut end = log.metadata().map_err(io(log_path))?.len();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = output.read(&mut buf) {
            if n == 0 || log.write_all(&buf[..n]).is_err() {
                break;
            }
            end += n as u64;
            let _ = writeln!(times, "{end} {}", crate::write_checker::history::now_ms());
        }
    });
    Ok(stream)
}

/// Where a console log's arrival times are kept.
fn times_path(log: &Path) -> PathBuf {
    log.with_extension("times")
}

#[derive(Debug)]
pub struct Console {
    vm: String,
    log: PathBuf,
    socket: PathBuf,
    input: UnixStream,
    /// Bytes of the log already consumed by waits; a wait looks only past it.
    cursor: usize,
    commands: u32,
}

impl Console {
    /// Connects to QEMU's console socket and starts recording into `log`.
    pub(crate) fn connect(vm: &str, socket: PathBuf, log: PathBuf) -> Result<Self, LabError> {
        let file = std::fs::File::create(&log).map_err(io(&log))?;
        let times = times_path(&log);
        std::fs::File::create(&times).map_err(io(&times))?;
        let input = record(&socket, &log, file)?;
        Ok(Console { vm: vm.to_owned(), log, socket, input, cursor: 0, commands: 0 })
    }

    /// Connects to the console socket again (QEMU started anew) and goes on recording into
    /// the same log, after what is there.
    pub(crate) fn reconnect(&mut self) -> Result<(), LabError> {
        let file =
            std::fs::OpenOptions::new().append(true).create(true).open(&self.log).map_err(io(&self.log))?;
        self.input = record(&self.socket, &self.log, file)?;
        Ok(())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the console printed so far.
    pub fn text(&self) -> String {
        std::fs::read(&self.log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// When (milliseconds since the Unix epoch, host clock) the byte at `offset` of the log
    /// arrived, if it has.
    pub fn arrival_ms(&self, offset: usize) -> Option<u64> {
        let times = std::fs::read_to_string(times_path(&self.log)).ok()?;
        times.lines().find_map(|l| {
            let (end, ms) = l.split_once(' ')?;
            (end.parse::<usize>().ok()? > offset).then(|| ms.parse().ok()).flatten()
        })
    }

    /// The first line past byte `from` that contains `what`, and when it arrived (see
    /// [`Console::arrival_ms`]).
    pub fn find_since(&self, from: usize, what: &str) -> Option<(String, u64)> {
        let text = self.text();
        let at = from + text.get(from..)?.find(what)?;
        let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        Some((text[start..end].trim_end_matches('\r').to_owned(), self.arrival_ms(at)?))
    }

    /// The last `n` lines, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let text = self.text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits until a line past the cursor satisfies `matches`, and moves the cursor past it.
    /// `alive` is polled too, so a VM that died is reported at once instead of at the timeout.
    pub fn wait_line(
        &mut self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
        mut alive: impl FnMut() -> Result<(), pairos_host::CommandError>,
    ) -> Result<String, LabError> {
        let start = Instant::now();
        loop {
            let bytes = std::fs::read(&self.log).unwrap_or_default();
            let fresh = &bytes[self.cursor.min(bytes.len())..];
            let mut offset = 0;
            // Only complete lines: a half-written line may still grow into a match.
            while let Some(nl) = fresh[offset..].iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&fresh[offset..offset + nl]);
                let line = line.trim_end_matches('\r');
                offset += nl + 1;
                if matches(line) {
                    self.cursor += offset;
                    return Ok(line.to_owned());
                }
            }
            if let Err(source) = alive() {
                return Err(LabError::Exited {
                    vm: self.vm.clone(),
                    what: what.into(),
                    source: Box::new(source),
                    tail: self.tail(30),
                });
            }
            if start.elapsed() > timeout {
                return Err(LabError::Timeout {
                    vm: self.vm.clone(),
                    what: what.into(),
                    waited: timeout,
                    tail: self.tail(30),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Types `line` and Enter on the console.
    pub fn send_line(&mut self, line: &str) -> Result<(), LabError> {
        self.input.write_all(format!("{line}\n").as_bytes()).map_err(io(&self.socket))?;
        Ok(())
    }

    /// Runs a shell command on the console and returns its exit code and what it printed.
    /// The end is marked by a line the echo of the command itself cannot produce.
    pub fn run(
        &mut self,
        command: &str,
        timeout: Duration,
        alive: impl FnMut() -> Result<(), pairos_host::CommandError>,
    ) -> Result<(i32, String), LabError> {
        self.commands += 1;
        let marker = format!("@@lab-done-{}", self.commands);
        // The echoed command line shows `@@lab-done-N $?`; the output line shows the code.
        let start_cursor = self.cursor;
        self.send_line(&format!("{command}; echo {marker} $?"))?;
        let end = self.wait_line(
            &format!("the end of `{command}`"),
            timeout,
            |l| l.strip_prefix(&marker).and_then(exit_code).is_some(),
            alive,
        )?;
        let code = exit_code(&end[marker.len()..]).unwrap_or(-1);
        let bytes = std::fs::read(&self.log).map_err(io(&self.log))?;
        let window =
            String::from_utf8_lossy(&bytes[start_cursor..self.cursor.min(bytes.len())]).replace('\r', "");
        // Drop the echoed command line and the marker line.
        let mut lines: Vec<&str> = window.lines().collect();
        if let Some(pos) = lines.iter().position(|l| l.contains(&format!("{marker} $?"))) {
            lines.drain(..=pos);
        }
        lines.pop();
        Ok((code, lines.join("\n")))
    }

    /// As [`Console::run`], but only the command's own lines come back: each is tagged as it
    /// is printed, and the lines the daemon or the kernel wrote to the console meanwhile are
    /// left out. (A line of theirs that lands inside one of the command's still garbles it: a
    /// caller that parses the output asks again.)
    pub fn run_tagged(
        &mut self,
        command: &str,
        timeout: Duration,
        alive: impl FnMut() -> Result<(), pairos_host::CommandError>,
    ) -> Result<(i32, String), LabError> {
        const TAG: &str = "@@lab-out| ";
        let wrapped = format!(
            "lab_out=$( {command} 2>&1 ); lab_rc=$?; printf '%s\\n' \"$lab_out\" | sed 's/^/{TAG}/'; (exit $lab_rc)"
        );
        let (code, out) = self.run(&wrapped, timeout, alive)?;
        let own: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix(TAG)).collect();
        Ok((code, own.join("\n")))
    }
}

/// The exit code at the start of what follows a command's end marker. A kernel line may land
/// right behind it, on the same console line ("0[   72.42] block drbd0: …").
/// The marker is followed by a space (`@@lab-done-1` must not match `@@lab-done-11 0`).
fn exit_code(rest: &str) -> Option<i32> {
    let rest = rest.strip_prefix(' ')?.trim_start();
    let end = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(rest.len(), |(i, _)| i);
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::exit_code;

    #[test]
    fn the_exit_code_is_read_with_a_kernel_line_behind_it_and_only_after_its_own_marker() {
        assert_eq!(exit_code(" 0"), Some(0));
        assert_eq!(exit_code(" 2\r"), Some(2));
        assert_eq!(exit_code(" 0[   72.423482] block drbd0: Writing the whole bitmap"), Some(0));
        assert_eq!(exit_code(" -1"), Some(-1));
        assert_eq!(exit_code("1 0"), None, "the marker of command 1 inside that of command 11");
        assert_eq!(exit_code(" $?"), None, "the echoed command line");
    }
}
