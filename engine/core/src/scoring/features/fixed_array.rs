//! Serde for fixed-size arrays of any length: serde itself implements arrays only up to 32
//! elements, and not for const-generic lengths.

use serde::de::Error;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub fn serialize<S: Serializer, T: Serialize, const N: usize>(
    values: &[T; N],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    values.as_slice().serialize(serializer)
}

pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>, const N: usize>(
    deserializer: D,
) -> Result<[T; N], D::Error> {
    let values = Vec::<T>::deserialize(deserializer)?;
    let n = values.len();
    values
        .try_into()
        .map_err(|_| D::Error::invalid_length(n, &"one value per element"))
}
