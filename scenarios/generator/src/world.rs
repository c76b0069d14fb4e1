//! The generator's small world: countries with their coordinates, currencies and regions,
//! merchant categories, pages and product features. Customers travel within their region;
//! account takeovers come from another one.

use rand::Rng;

#[derive(Debug, Clone, Copy)]
pub struct Country {
    pub code: &'static str,
    pub currency: &'static str,
    pub region: u8,
    pub lat: f64,
    pub lon: f64,
}

const EUROPE: u8 = 0;
const NORTH_AMERICA: u8 = 1;
const ASIA_PACIFIC: u8 = 2;
const SOUTH_AMERICA: u8 = 3;
const AFRICA: u8 = 4;

pub const COUNTRIES: [Country; 16] = [
    Country {
        code: "FR",
        currency: "EUR",
        region: EUROPE,
        lat: 48.86,
        lon: 2.35,
    },
    Country {
        code: "DE",
        currency: "EUR",
        region: EUROPE,
        lat: 52.52,
        lon: 13.40,
    },
    Country {
        code: "ES",
        currency: "EUR",
        region: EUROPE,
        lat: 40.42,
        lon: -3.70,
    },
    Country {
        code: "IT",
        currency: "EUR",
        region: EUROPE,
        lat: 41.90,
        lon: 12.50,
    },
    Country {
        code: "NL",
        currency: "EUR",
        region: EUROPE,
        lat: 52.37,
        lon: 4.90,
    },
    Country {
        code: "GB",
        currency: "GBP",
        region: EUROPE,
        lat: 51.51,
        lon: -0.13,
    },
    Country {
        code: "US",
        currency: "USD",
        region: NORTH_AMERICA,
        lat: 40.71,
        lon: -74.00,
    },
    Country {
        code: "CA",
        currency: "CAD",
        region: NORTH_AMERICA,
        lat: 43.65,
        lon: -79.38,
    },
    Country {
        code: "MX",
        currency: "MXN",
        region: NORTH_AMERICA,
        lat: 19.43,
        lon: -99.13,
    },
    Country {
        code: "JP",
        currency: "JPY",
        region: ASIA_PACIFIC,
        lat: 35.68,
        lon: 139.69,
    },
    Country {
        code: "SG",
        currency: "SGD",
        region: ASIA_PACIFIC,
        lat: 1.35,
        lon: 103.82,
    },
    Country {
        code: "AU",
        currency: "AUD",
        region: ASIA_PACIFIC,
        lat: -33.87,
        lon: 151.21,
    },
    Country {
        code: "BR",
        currency: "BRL",
        region: SOUTH_AMERICA,
        lat: -23.55,
        lon: -46.63,
    },
    Country {
        code: "AR",
        currency: "ARS",
        region: SOUTH_AMERICA,
        lat: -34.60,
        lon: -58.38,
    },
    Country {
        code: "NG",
        currency: "NGN",
        region: AFRICA,
        lat: 6.52,
        lon: 3.38,
    },
    Country {
        code: "ZA",
        currency: "ZAR",
        region: AFRICA,
        lat: -26.20,
        lon: 28.05,
    },
];

pub const MCCS: [&str; 12] = [
    "5411", "5812", "5541", "5311", "5912", "5732", "4111", "5814", "5942", "7011", "4511", "5651",
];

pub const FEATURES: [&str; 4] = ["export", "reports", "dashboard", "api"];

/// Pages a benign visitor looks at, with weights; pricing and cancel are rare.
pub const PAGES: [(&str, f64); 7] = [
    ("home", 0.35),
    ("catalog", 0.3),
    ("account", 0.15),
    ("help", 0.1),
    ("orders", 0.09),
    ("pricing", 0.008),
    ("cancel", 0.002),
];

pub fn pick_weighted<R: Rng>(items: &[(&'static str, f64)], rng: &mut R) -> &'static str {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0.0..total);
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

/// Homes are mostly in Europe and North America, as a European or American bank's are.
pub fn pick_home<R: Rng>(rng: &mut R) -> usize {
    if rng.gen_bool(0.65) {
        rng.gen_range(0..6)
    } else {
        rng.gen_range(6..9)
    }
}

/// Another country of the same region: where customers travel.
pub fn pick_near_country<R: Rng>(home: usize, rng: &mut R) -> usize {
    let region = COUNTRIES[home].region;
    let near: Vec<usize> = (0..COUNTRIES.len())
        .filter(|&c| c != home && COUNTRIES[c].region == region)
        .collect();
    near[rng.gen_range(0..near.len())]
}

/// A country of another region: where account takeovers come from.
pub fn pick_far_country<R: Rng>(home: usize, rng: &mut R) -> usize {
    let region = COUNTRIES[home].region;
    let far: Vec<usize> = (0..COUNTRIES.len())
        .filter(|&c| COUNTRIES[c].region != region)
        .collect();
    far[rng.gen_range(0..far.len())]
}

/// First UTC hour of a customer's 15 waking hours, by their home's time zone.
pub fn wake_hour<R: Rng>(home: usize, rng: &mut R) -> u32 {
    let local_offset = (COUNTRIES[home].lon / 15.0).round() as i32;
    let local_wake = rng.gen_range(6..9);
    (local_wake - local_offset).rem_euclid(24) as u32
}
