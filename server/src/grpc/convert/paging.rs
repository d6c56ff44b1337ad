//! Paging: opaque page tokens, and pages that stop before the message limit.

use crate::domain::limits::MAX_MESSAGE_BYTES;

/// Opaque page tokens: the list they belong to, the last key returned and
/// a check, in hex. A token from another list, or one this server did not
/// make (a typo, a truncation, junk), is refused as `page_token` rather
/// than read as a position. (The check is a plain digest, not a secret: a
/// token built on purpose is only a position the caller could ask for
/// anyway.)
pub mod page_token {
    use sha2::Digest as _;

    use crate::domain::error::{DomainError, DomainResult};

    /// The lists that page, each with its own tokens.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(u8)]
    pub enum List {
        /// `ListTeams`.
        Teams = 1,
        /// `ListStock`.
        Stock,
        /// `ListLedger`.
        Ledger,
        /// `ListItems`.
        Items,
        /// `ListDepots`.
        Depots,
        /// `ListPlans`.
        Plans,
        /// `ListIncidents`.
        Incidents,
        /// `ListAssignments`.
        Assignments,
        /// `ListZones`.
        Zones,
        /// `ListEvents`.
        Events,
        /// `ListDrillRuns`.
        DrillRuns,
    }

    /// Bytes of the check at the end of a token.
    const CHECK_BYTES: usize = 4;

    fn check(list: List, key: &[u8]) -> [u8; CHECK_BYTES] {
        let digest = sha2::Sha256::new().chain_update([list as u8]).chain_update(key).finalize();
        let mut check = [0; CHECK_BYTES];
        check.copy_from_slice(&digest[..CHECK_BYTES]);
        check
    }

    /// The token of `list` that continues after `last_key`.
    pub fn encode(list: List, last_key: &str) -> String {
        let mut bytes = vec![list as u8];
        bytes.extend_from_slice(last_key.as_bytes());
        bytes.extend(check(list, last_key.as_bytes()));
        hex::encode(bytes)
    }

    /// The refusal of a token this server did not issue for the list.
    fn refused() -> DomainError {
        DomainError::invalid("page_token", "is not a token this server issued for this list")
    }

    /// The key of `list` to continue after, or `None` for the first page.
    pub fn decode(list: List, token: &str) -> DomainResult<Option<String>> {
        if token.is_empty() {
            return Ok(None);
        }
        let bytes = hex::decode(token).map_err(|_| refused())?;
        let Some((&tag, rest)) = bytes.split_first() else { return Err(refused()) };
        let Some((key, given)) = rest.split_at_checked(rest.len().saturating_sub(CHECK_BYTES)) else {
            return Err(refused());
        };
        if tag != list as u8 || given.len() != CHECK_BYTES || given != check(list, key) {
            return Err(refused());
        }
        String::from_utf8(key.to_vec()).map(Some).map_err(|_| refused())
    }

    /// The token of `list` after a sequence number.
    pub fn encode_sequence(list: List, last: u64) -> String {
        encode(list, &last.to_string())
    }

    /// The sequence of `list` to continue after (0 for the first page).
    pub fn decode_sequence(list: List, token: &str) -> DomainResult<u64> {
        match decode(list, token)? {
            None => Ok(0),
            Some(text) => text.parse().map_err(|_| refused()),
        }
    }

    #[cfg(test)]
    mod tests {
        #![allow(clippy::unwrap_used)]

        use super::*;

        #[test]
        fn a_token_reads_back_only_in_its_own_list() {
            let token = encode(List::Teams, "WR-01");
            assert_eq!(decode(List::Teams, &token).unwrap().as_deref(), Some("WR-01"));
            assert!(decode(List::Incidents, &token).is_err(), "another list's token");
            assert!(decode(List::Teams, &hex::encode("WR-01")).is_err(), "a token this server did not make");
            let mut altered = token.clone();
            altered.replace_range(2..4, "58");
            assert!(decode(List::Teams, &altered).is_err(), "one byte changed");
            assert!(decode(List::Teams, "zz").is_err());
            assert!(decode(List::Teams, "01").is_err());
            assert_eq!(decode_sequence(List::Events, &encode_sequence(List::Events, 42)).unwrap(), 42);
            assert_eq!(decode_sequence(List::Events, "").unwrap(), 0);
        }
    }
}

/// Room for one page's items: the message limit less a margin for the page
/// token and framing, so no list response exceeds [`MAX_MESSAGE_BYTES`].
pub const PAGE_BYTES: usize = MAX_MESSAGE_BYTES - 64 * 1024;

/// Counts the bytes of a page as it fills (`api.md`, "Operations": a page
/// ends early, with a token, rather than exceed the message limit).
#[derive(Debug, Default)]
pub struct PageBytes {
    used: usize,
}

impl PageBytes {
    /// Takes `message` into the page if it fits; the first item always fits
    /// (a request of that size was accepted, so one answer of it is sent).
    pub fn take(&mut self, message: &impl prost::Message) -> bool {
        // The field tag and the length prefix of a repeated message.
        let size = message.encoded_len() + 1 + prost::length_delimiter_len(message.encoded_len());
        if self.used > 0 && self.used + size > PAGE_BYTES {
            return false;
        }
        self.used += size;
        true
    }
}

/// Takes up to `page_size` items from an ordered iterator of `(key, item)`,
/// rendered by `render`, stopping early before the page would pass
/// [`PAGE_BYTES`]; returns them and the token for the next page (empty when
/// there is none).
pub fn page<'a, K, V, P, I>(
    list: page_token::List,
    items: I,
    page_size: usize,
    key_text: impl Fn(&K) -> String,
    render: impl Fn(&V) -> P,
) -> (Vec<P>, String)
where
    I: Iterator<Item = (&'a K, &'a V)>,
    K: 'a,
    V: 'a,
    P: prost::Message,
{
    let mut page = Vec::with_capacity(page_size.min(1_000));
    let mut bytes = PageBytes::default();
    let mut last_key = None;
    let mut more = false;
    for (key, value) in items {
        if page.len() == page_size {
            more = true;
            break;
        }
        let rendered = render(value);
        if !bytes.take(&rendered) {
            more = true;
            break;
        }
        last_key = Some(key_text(key));
        page.push(rendered);
    }
    let token = match (more, last_key) {
        (true, Some(last)) => page_token::encode(list, &last),
        _ => String::new(),
    };
    (page, token)
}
