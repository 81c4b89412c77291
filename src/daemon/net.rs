//! Reads `$phone_ip` and `$mac` from a network interface, at event time.

use std::net::Ipv4Addr;

/// The first IPv4 address of `iface`, if it has one.
pub fn ipv4(iface: &str) -> Option<Ipv4Addr> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for a in addrs {
        if a.interface_name != iface {
            continue;
        }
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            return Some(sin.ip());
        }
    }
    None
}

/// The MAC of `iface` as 12 lowercase hex digits (from sysfs).
pub fn mac(iface: &str) -> Option<String> {
    if iface.contains('/') || iface.contains("..") {
        return None;
    }
    let text = std::fs::read_to_string(format!("/sys/class/net/{iface}/address")).ok()?;
    let hex: String = text
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback() {
        assert_eq!(super::ipv4("lo"), Some(std::net::Ipv4Addr::LOCALHOST));
        assert_eq!(super::mac("lo").as_deref(), Some("000000000000"));
        assert_eq!(super::mac("../etc"), None);
        assert_eq!(super::ipv4("no-such-if0"), None);
    }
}
