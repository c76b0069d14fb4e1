//! Where payments happen: great-circle distance, and `Centroid`, the customer's usual place as
//! the running mean of their payment locations on the unit sphere (so it is well defined
//! across the antimeridian and near the poles).
//!
//! The mean weighs every location equally until `HABIT` of them, then leans towards recent
//! ones with weight `1 / HABIT`, so a customer who moves gets a new usual place.

use crate::event::GeoPoint;

const EARTH_RADIUS_KM: f64 = 6_371.0;
const HABIT: f64 = 200.0;

/// Great-circle distance in kilometres.
pub fn haversine_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Centroid {
    /// Mean of the unit vectors of the locations seen.
    mean: [f64; 3],
    locations: f64,
}

impl Centroid {
    /// Distance in kilometres from the usual place to `at`; `None` before the first location,
    /// or when the locations cancel out (no usual place).
    pub fn distance_km(&self, at: GeoPoint) -> Option<f64> {
        let [x, y, z] = self.mean;
        let norm = (x * x + y * y + z * z).sqrt();
        if self.locations == 0.0 || norm < 1e-9 {
            return None;
        }
        let usual = GeoPoint {
            lat: (z / norm).clamp(-1.0, 1.0).asin().to_degrees(),
            lon: y.atan2(x).to_degrees(),
        };
        Some(haversine_km(usual, at))
    }

    pub fn add(&mut self, at: GeoPoint) {
        let (lat, lon) = (at.lat.to_radians(), at.lon.to_radians());
        let unit = [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()];
        self.locations = (self.locations + 1.0).min(HABIT);
        let weight = 1.0 / self.locations;
        for (m, u) in self.mean.iter_mut().zip(unit) {
            *m += (u - *m) * weight;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint { lat, lon }
    }

    #[test]
    fn the_usual_place_is_between_the_places_seen() {
        let mut centroid = Centroid::default();
        assert_eq!(centroid.distance_km(at(0.0, 0.0)), None);
        centroid.add(at(0.0, 179.0));
        centroid.add(at(0.0, -179.0));
        // Across the antimeridian the middle is at 180°, not at 0°.
        assert!(centroid.distance_km(at(0.0, 180.0)).unwrap() < 1.0);
        let one_degree = haversine_km(at(0.0, 0.0), at(0.0, 1.0));
        let d = centroid.distance_km(at(0.0, 179.0)).unwrap();
        assert!((d - one_degree).abs() < 0.01, "{d} against {one_degree}");
    }

    #[test]
    fn a_long_habit_gives_way_to_a_new_one() {
        let mut centroid = Centroid::default();
        for _ in 0..1000 {
            centroid.add(at(48.85, 2.35));
        }
        for _ in 0..1000 {
            centroid.add(at(51.5, -0.13));
        }
        // What is left of Paris after 1000 steps of 1/200 is e^-5 of the 343 km.
        assert!(centroid.distance_km(at(51.5, -0.13)).unwrap() < 3.0);
    }
}
