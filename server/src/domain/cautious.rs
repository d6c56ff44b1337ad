//! Decoding imbl collections without trusting their declared length.
//!
//! imbl's own `Deserialize` reserves room for as many entries as the
//! encoding declares before reading one, so a damaged or hostile snapshot
//! whose length prefix says "a billion" asks for gigabytes at once (the
//! `records` fuzz target found exactly that, behind a forged checksum).
//! These read entry by entry instead: memory grows only with entries that
//! are really there. Used through `#[serde(deserialize_with = ...)]`; the
//! encoding is unchanged.

use std::fmt;
use std::marker::PhantomData;

use imbl::{OrdMap, OrdSet, Vector};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// An `OrdMap`, entry by entry.
pub fn ord_map<'de, D, K, V>(deserializer: D) -> Result<OrdMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + Clone,
    V: Deserialize<'de> + Clone,
{
    struct Entries<K, V>(PhantomData<(K, V)>);

    impl<'de, K, V> Visitor<'de> for Entries<K, V>
    where
        K: Deserialize<'de> + Ord + Clone,
        V: Deserialize<'de> + Clone,
    {
        type Value = OrdMap<K, V>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = OrdMap::new();
            while let Some((key, value)) = access.next_entry()? {
                map.insert(key, value);
            }
            Ok(map)
        }
    }

    deserializer.deserialize_map(Entries(PhantomData))
}

/// An `OrdSet`, element by element.
pub fn ord_set<'de, D, T>(deserializer: D) -> Result<OrdSet<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Ord + Clone,
{
    elements(deserializer, "a set")
}

/// A `Vector`, element by element.
pub fn vector<'de, D, T>(deserializer: D) -> Result<Vector<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Clone,
{
    elements(deserializer, "a sequence")
}

/// A sequence into `C` (an `OrdSet` or a `Vector`), element by element;
/// `expecting` names it in a type mismatch.
fn elements<'de, D, T, C>(deserializer: D, expecting: &'static str) -> Result<C, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
    C: Default + Extend<T>,
{
    struct Elements<T, C>(&'static str, PhantomData<(T, C)>);

    impl<'de, T: Deserialize<'de>, C: Default + Extend<T>> Visitor<'de> for Elements<T, C> {
        type Value = C;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str(self.0)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut collection = C::default();
            while let Some(element) = access.next_element()? {
                collection.extend(std::iter::once(element));
            }
            Ok(collection)
        }
    }

    deserializer.deserialize_seq(Elements(expecting, PhantomData))
}
