//! The device variables: board identity, config language, and the interface read now.

use super::*;

/// The device variables: board identity, config language, and the interface read now.
pub struct Device {
    pub(super) board: Board,
    pub(super) program_version: String,
    pub(super) interface: String,
    pub(super) language: String,
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
        }
    }

    pub fn vars(&self) -> Vars {
        let mut v = Vars::new();
        if let Some(ip) = net::ipv4(&self.interface) {
            let mut s = heapless::String::<16>::new();
            let _ = write!(s, "{ip}");
            v.set(Var::PhoneIp, &s);
        }
        if let Some(mac) = net::mac(&self.interface) {
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
