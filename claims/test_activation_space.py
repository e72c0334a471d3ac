"""Claims C5–C6: specialists in activation space — not modular, but coordinated."""

from harness import coactivation, dimension


def test_C5_specialists_not_modular(study, settings, claim_record):
    record = claim_record("C5", study.subject.spec)
    x, seq_ids = study.rare_activations()
    result = coactivation.modularity_test(
        x, seq_ids, study.specialists(settings["min_segment_points"]),
        n_null=settings["n_null"], louvain_seeds=settings["louvain_seeds"],
        threshold=settings["coactivation_threshold"], delta=settings["modularity_delta"],
        n_bootstrap=settings["n_bootstrap_modularity"], alpha=settings["alpha"], rng_seed=settings["seed"],
    )
    record.add(result.record_fields())
    record.sample_sizes.update(study.sample_sizes())
    record.decide(result.checks, f"{study.subject.spec}: {result.message}; paper: {record.paper}")
    assert record.verdict == "pass", record.message


def test_C6_specialists_coordinated(study, settings, claim_record):
    record = claim_record("C6", study.subject.spec)
    x, _ = study.rare_activations()
    result = dimension.coordination_test(
        x, study.specialists(settings["min_segment_points"]), n_null=settings["n_null"],
        variance_explained=settings["variance_explained"], alpha=settings["alpha"], rng_seed=settings["seed"],
    )
    record.add(result.record_fields())
    record.sample_sizes.update(study.sample_sizes())
    record.decide(result.checks, f"{study.subject.spec}: {result.message}; paper: {record.paper}")
    assert record.verdict == "pass", record.message
