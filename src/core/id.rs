//! Delivery ids: what a receiver de-duplicates on.
//!
//! A notification's [`Key`] (the daemon's start counter and its sequence number in that start)
//! orders it among all notifications of this phone and names it in the spool; its
//! [`DeliveryId`] (`<mac>-<start>-<seq>`) is what the receiver gets, the same on every attempt.

/// Identifies a notification across restarts: the daemon's start counter and its sequence number
/// in that start. Orders notifications as their events happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Key {
    pub boot: u32,
    pub seq: u64,
}

/// Longest delivery id: 12 hex digits, two dashes, a u32 and a u64 in decimal.
pub const ID_CAP: usize = 48;

/// A delivery id: `<mac>-<start>-<seq>`.
pub type DeliveryId = heapless::String<ID_CAP>;

/// The delivery id of notification `seq` of daemon start `boot` on the phone with this MAC
/// (12 hex digits; anything else, such as no MAC on the interface, gives twelve zeros). The same on
/// every attempt of that notification, and unique across restarts since `boot` never repeats.
///
/// ```
/// use event_notify::core::id::delivery_id;
/// assert_eq!(delivery_id("000b82123456", 17, 42), "000b82123456-17-42");
/// assert_eq!(delivery_id("", 1, 1), "000000000000-1-1");
/// assert_eq!(
///     delivery_id("000B82123456", u32::MAX, u64::MAX),
///     "000b82123456-4294967295-18446744073709551615"
/// );
/// ```
pub fn delivery_id(mac: &str, boot: u32, seq: u64) -> DeliveryId {
    let mut id = DeliveryId::new();
    let mac_ok = mac.len() == 12 && mac.bytes().all(|b| b.is_ascii_hexdigit());
    let mac = if mac_ok { mac } else { "000000000000" };
    let mut lower = [0u8; 12];
    for (d, s) in lower.iter_mut().zip(mac.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    // ASCII hex digits (checked above).
    let _ = id.push_str(core::str::from_utf8(&lower).unwrap_or("000000000000"));
    // Without `core::fmt` (a few hundred instructions per number). Cannot overflow: ID_CAP.
    let _ = id.push('-');
    super::var::push_u64(&mut id, boot.into());
    let _ = id.push('-');
    super::var::push_u64(&mut id, seq);
    id
}
