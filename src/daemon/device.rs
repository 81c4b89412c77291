//! The device variables: board identity, config language, and the interface read now.

use super::*;

/// What was read from the interface: `$phone_ip` and `$mac`.
type Read = (Option<std::net::Ipv4Addr>, Option<heapless::String<12>>);

/// The device variables: board identity, config language, and the interface's address and MAC.
pub struct Device {
    pub(super) board: Board,
    pub(super) program_version: String,
    pub(super) interface: String,
    pub(super) language: String,
    /// The interface as last read, kept while the kernel reports no change ([`net::Watch`]);
    /// `keep` is false without a watch: read for every message.
    read: Option<Read>,
    pub(super) keep: bool,
}

impl Device {
    pub fn new(board: &Board, config: &Config) -> Device {
        let file = board
            .program_version_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok());
        Device {
            board: board.clone(),
            program_version: board.program_version_from(file.as_deref()),
            interface: config
                .device
                .interface
                .clone()
                .or_else(|| board.interface.clone())
                .unwrap_or_else(|| "eth0".into()),
            language: config
                .device
                .language
                .clone()
                .or_else(|| board.language.clone())
                .unwrap_or_else(|| "en".into()),
            read: None,
            keep: false,
        }
    }

    /// The kernel reported a link or address change: read the interface again next time.
    pub fn changed(&mut self) {
        self.read = None;
    }

    pub fn vars(&mut self) -> Vars {
        let (ip, mac) = match &self.read {
            Some(r) => r.clone(),
            None => {
                let r = (net::ipv4(&self.interface), net::mac(&self.interface));
                if self.keep {
                    self.read = Some(r.clone());
                }
                r
            }
        };
        let mut v = Vars::new();
        if let Some(ip) = ip {
            let mut s = heapless::String::<16>::new();
            let _ = write!(s, "{ip}");
            v.set(Var::PhoneIp, &s);
        }
        if let Some(mac) = mac {
            v.set(Var::Mac, &mac);
        }
        v.set(Var::Product, &self.board.product);
        v.set(Var::HardwareVersion, &self.board.hardware_version);
        v.set(Var::ProgramVersion, &self.program_version);
        v.set(Var::Language, &self.language);
        v
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }
}
