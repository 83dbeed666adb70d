// Queue simulation — an event-driven single-server queue, checked against queueing theory.
//
// Before you tune a queue, know what one does. In the M/M/1 model (Poisson arrivals at rate λ,
// exponential service at rate μ, one FIFO server) the mean wait in line is Wq = ρ/(μ−λ) with
// ρ = λ/μ: at 80% load 4 service times, at 95% 19. Capacity planning starts from this curve.
//
// Build the simulation. `exponential` draws a seeded exponential time; `workload` makes `n` jobs
// with exponential inter-arrival times at rate λ and service times from `Service`; `serve_fifo`
// runs them through one FIFO server. The property: each job starts when it has arrived AND the
// server has finished the job before it (an idle server starts a job at its arrival), jobs are
// served in arrival order, and over a long seeded run the mean wait matches M/M/1, and M/D/1
// (constant service: the Pollaczek–Khinchine formula gives half the M/M/1 wait).
//
// Lab: mean wait against load for both models. Turn LOADS up towards 1.0 and watch the wait
// explode; compare JOBS small and large to see how long a run the formula needs.

use rand::Rng;
#[allow(unused_imports)] // yours to use
use rand::RngExt;
use sdlings_kit::backpressure::queueing_lab;

/// One job: when it arrives and how long the server works on it (in service-time units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job {
    pub arrival: f64,
    pub service: f64,
}

/// When the server started a job and when it finished it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Served {
    pub start: f64,
    pub departure: f64,
}

/// How service times are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Service {
    /// Exponential with this rate μ (mean 1/μ): M/M/1.
    Exponential(f64),
    /// Always this long: M/D/1.
    Constant(f64),
}

// ---- Your part -------------------------------------------------------------------------------

/// An exponentially distributed time with rate `rate` (mean 1/rate), drawn from `rng`.
pub fn exponential(rng: &mut impl Rng, rate: f64) -> f64 {
    let _ = rng; // (only silences "unused variable" until you use `rng`: delete it)
    todo!("an exponential time with rate {rate}, drawn from rng")
}

/// `n` jobs in arrival order: a Poisson process of rate `lambda` (the first job arrives one
/// inter-arrival time after 0), each with a service time drawn from `service`.
pub fn workload(rng: &mut impl Rng, lambda: f64, service: Service, n: usize) -> Vec<Job> {
    let _ = rng; // (only silences "unused variable" until you use `rng`: delete it)
    todo!("{n} jobs arriving at rate {lambda}, service times from {service:?}")
}

/// Runs `jobs` (in arrival order) through one FIFO server: when each started and departed.
pub fn serve_fifo(jobs: &[Job]) -> Vec<Served> {
    todo!("when each of the {} jobs starts and departs", jobs.len())
}

// ---- Lab -------------------------------------------------------------------------------------

/// Offered loads ρ = λ/μ to simulate (μ = 1: times are in mean service times).
const LOADS: [f64; 6] = [0.5, 0.7, 0.8, 0.9, 0.95, 0.99];
/// Jobs per simulated run, and the seed.
const JOBS: usize = 400_000;
const SEED: u64 = 8;

fn main() {
    queueing_lab(&LOADS, JOBS, SEED, |rng, load, constant| {
        let service = if constant {
            Service::Constant(1.0)
        } else {
            Service::Exponential(1.0)
        };
        let jobs = workload(rng, load, service, JOBS);
        let served = serve_fifo(&jobs);
        let total: f64 = jobs
            .iter()
            .zip(&served)
            .map(|(j, s)| s.start - j.arrival)
            .sum();
        total / jobs.len() as f64
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdlings_kit::backpressure::FastRng;

    /// A random source that only ever draws 0.
    struct Zeros;

    impl rand::TryRng for Zeros {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(0)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.fill(0);
            Ok(())
        }
    }

    fn jobs(times: &[(f64, f64)]) -> Vec<Job> {
        times
            .iter()
            .map(|&(arrival, service)| Job { arrival, service })
            .collect()
    }

    fn starts(times: &[(f64, f64)]) -> Vec<f64> {
        serve_fifo(&jobs(times)).iter().map(|s| s.start).collect()
    }

    fn mean_wait(lambda: f64, service: Service, n: usize, seed: u64) -> f64 {
        let jobs = workload(&mut FastRng::seeded(seed), lambda, service, n);
        let served = serve_fifo(&jobs);
        let total: f64 = jobs
            .iter()
            .zip(&served)
            .map(|(j, s)| s.start - j.arrival)
            .sum();
        total / n as f64
    }

    #[test]
    fn a_job_that_finds_the_server_busy_starts_when_the_previous_one_departs() {
        let served = serve_fifo(&jobs(&[(0.0, 3.0), (1.0, 2.0), (2.0, 1.0)]));
        let expected = [
            Served {
                start: 0.0,
                departure: 3.0,
            },
            Served {
                start: 3.0,
                departure: 5.0,
            },
            Served {
                start: 5.0,
                departure: 6.0,
            },
        ];
        assert_eq!(
            served, expected,
            "job 1 arrives at 1 while job 0 runs until 3: it waits 2, runs 3..5; job 2 waits \
             for job 1 and runs 5..6"
        );
    }

    #[test]
    fn an_idle_server_starts_a_job_at_its_arrival_not_at_the_previous_departure() {
        assert_eq!(
            starts(&[(0.0, 1.0), (4.0, 2.0), (5.0, 1.0), (10.0, 0.5)]),
            [0.0, 4.0, 6.0, 10.0],
            "job 0 departs at 1 and job 1 arrives at 4: the server sat idle, so job 1 starts \
             at 4 (waiting 0); job 2 arrives at 5 during job 1 and starts at its departure, 6; \
             job 3 finds an idle server again"
        );
    }

    #[test]
    fn jobs_are_served_in_arrival_order_not_shortest_first() {
        let served = serve_fifo(&jobs(&[(0.0, 5.0), (1.0, 4.0), (1.5, 0.5), (2.0, 1.0)]));
        let starts: Vec<f64> = served.iter().map(|s| s.start).collect();
        assert_eq!(
            starts,
            [0.0, 5.0, 9.0, 9.5],
            "FIFO: the short jobs 2 and 3 still wait behind job 1 (shortest-first would \
             give a lower mean wait, but it is not the M/M/1 model and it starves long jobs)"
        );
        assert_eq!(served[3].departure, 10.5);
    }

    #[test]
    fn jobs_arriving_together_queue_one_behind_the_other() {
        assert_eq!(
            starts(&[(2.0, 1.0), (2.0, 1.0), (2.0, 1.0)]),
            [2.0, 3.0, 4.0]
        );
        assert_eq!(serve_fifo(&[]), [], "no jobs, nothing served");
    }

    #[test]
    fn waits_match_lindleys_recursion_on_random_schedules() {
        sdlings_kit::property::for_seeds(200, |rng| {
            let n = rng.random_range(1..40);
            let mut t = 0.0;
            let mut times = Vec::new();
            for _ in 0..n {
                t += f64::from(rng.random_range(0..4u8));
                times.push((t, f64::from(rng.random_range(1..5u8))));
            }
            // Lindley: wait(k) = max(0, wait(k-1) + service(k-1) - gap(k)).
            let mut wait: f64 = 0.0;
            let served = serve_fifo(&jobs(&times));
            for k in 0..times.len() {
                if k > 0 {
                    let gap = times[k].0 - times[k - 1].0;
                    wait = (wait + times[k - 1].1 - gap).max(0.0);
                }
                assert_eq!(served[k].start, times[k].0 + wait, "job {k} of {times:?}");
                assert_eq!(served[k].departure, served[k].start + times[k].1, "job {k}");
            }
        });
    }

    #[test]
    fn exponential_times_have_the_right_mean_and_the_memoryless_tail() {
        let mut rng = FastRng::seeded(1);
        let n = 100_000;
        let samples: Vec<f64> = (0..n).map(|_| exponential(&mut rng, 4.0)).collect();
        let mean = samples.iter().sum::<f64>() / n as f64;
        assert!(
            (mean - 0.25).abs() < 0.01,
            "rate 4 means a mean of 1/4, got {mean}: is the rate a rate, not a mean?"
        );
        let above = samples.iter().filter(|&&x| x > 0.25).count() as f64 / n as f64;
        assert!(
            (above - (-1.0f64).exp()).abs() < 0.01,
            "an exponential exceeds its mean with probability e^-1 = 0.368, got {above}: \
             a uniform time with the same mean would give 0.5"
        );
        let tail = samples.iter().filter(|&&x| x > 1.0).count() as f64 / n as f64;
        assert!(
            (tail - (-4.0f64).exp()).abs() < 0.003,
            "P(X > 4 means) = e^-4 = 0.018, got {tail}"
        );
        assert!(
            samples.iter().all(|x| x.is_finite() && *x >= 0.0),
            "times are finite"
        );
        assert_eq!(
            exponential(&mut Zeros, 4.0),
            0.0,
            "a uniform draw of exactly 0 (it happens: 1 in 2^53) must give a finite time, 0: \
             the logarithm of 0 is -infinity"
        );
    }

    #[test]
    fn a_workload_is_a_poisson_process_with_the_given_service() {
        let mut rng = FastRng::seeded(2);
        let jobs = workload(&mut rng, 0.5, Service::Constant(1.5), 50_000);
        assert_eq!(jobs.len(), 50_000);
        assert!(
            jobs.windows(2).all(|w| w[0].arrival <= w[1].arrival) && jobs[0].arrival > 0.0,
            "arrival times are the running sum of the gaps, so they increase"
        );
        let rate = jobs.len() as f64 / jobs.last().unwrap().arrival;
        assert!(
            (rate - 0.5).abs() < 0.01,
            "λ = 0.5 jobs per unit, got {rate}"
        );
        assert!(
            jobs.iter().all(|j| j.service == 1.5),
            "M/D/1: constant service"
        );
        let jobs = workload(&mut rng, 0.5, Service::Exponential(2.0), 50_000);
        let mean = jobs.iter().map(|j| j.service).sum::<f64>() / jobs.len() as f64;
        assert!(
            (mean - 0.5).abs() < 0.01,
            "service rate μ = 2: mean 0.5, got {mean}"
        );
    }

    #[test]
    fn mean_wait_at_80_percent_load_matches_the_mm1_formula() {
        // λ = 0.8, μ = 1: Wq = ρ/(μ−λ) = 0.8/0.2 = 4 service times.
        let wq = mean_wait(0.8, Service::Exponential(1.0), 300_000, 0);
        assert!(
            (wq - 4.0).abs() < 0.2,
            "M/M/1 at ρ = 0.8: Wq = ρ/(μ−λ) = 4, simulated {wq:.3} (within 5%)"
        );
        // Time in other units: μ = 10, λ = 5: Wq = 0.5/5 = 0.1.
        let wq = mean_wait(5.0, Service::Exponential(10.0), 40_000, 3);
        assert!(
            (wq - 0.1).abs() < 0.005,
            "M/M/1 at ρ = 0.5, μ = 10: Wq = 0.1, got {wq:.4}"
        );
    }

    #[test]
    fn constant_service_halves_the_wait_as_pollaczek_khinchine_says() {
        // M/D/1: Wq = ρ/(2μ(1−ρ)) = 0.8/(2·0.2) = 2, half of M/M/1's 4.
        let wq = mean_wait(0.8, Service::Constant(1.0), 300_000, 3);
        assert!(
            (wq - 2.0).abs() < 0.1,
            "M/D/1 at ρ = 0.8: Wq = 2 (variance of service matters), simulated {wq:.3}"
        );
    }
}
