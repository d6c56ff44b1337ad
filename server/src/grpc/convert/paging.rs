//! Paging: opaque page tokens, and pages that stop before the message limit.

use crate::domain::limits::MAX_MESSAGE_BYTES;

/// Opaque page tokens: the hex of the last key returned.
pub mod page_token {
    use crate::domain::error::{DomainError, DomainResult};

    /// The token that continues after `last_key`.
    pub fn encode(last_key: &str) -> String {
        hex::encode(last_key.as_bytes())
    }

    /// The key to continue after, or `None` for the first page.
    pub fn decode(token: &str) -> DomainResult<Option<String>> {
        if token.is_empty() {
            return Ok(None);
        }
        hex::decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(Some)
            .ok_or_else(|| DomainError::invalid("page_token", "is not a token this server issued"))
    }

    /// The token after a sequence number.
    pub fn encode_sequence(last: u64) -> String {
        encode(&last.to_string())
    }

    /// The sequence to continue after (0 for the first page).
    pub fn decode_sequence(token: &str) -> DomainResult<u64> {
        match decode(token)? {
            None => Ok(0),
            Some(text) => {
                text.parse().map_err(|_| DomainError::invalid("page_token", "is not a token this server issued"))
            }
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
        (true, Some(last)) => page_token::encode(&last),
        _ => String::new(),
    };
    (page, token)
}
