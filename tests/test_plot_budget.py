"""Plotting never takes more than its share of a trial's training time."""

from orchestrator.plot_budget import PlotBudget


def test_short_epochs_draw_rarely_and_long_ones_every_time():
    budget = PlotBudget(share=0.1, first_cost=0.5)
    drawn = []
    for epoch in range(1, 21):  # one-second epochs, every epoch a new best, 0.5 s per drawing
        budget.add_epoch(1.0)
        if budget.allows():
            budget.add_plotting(0.5)
            drawn.append(epoch)
    assert drawn == [5, 10, 15, 20]
    assert budget.plotting_seconds <= 0.1 * budget.training_seconds

    long_epochs = PlotBudget(share=0.1, first_cost=0.5)
    for _ in range(5):  # ten-minute epochs: a drawing always fits
        long_epochs.add_epoch(600.0)
        assert long_epochs.allows()
        long_epochs.add_plotting(0.8)


def test_the_next_drawing_is_expected_to_cost_what_the_last_one_did():
    budget = PlotBudget(share=0.5, first_cost=0.1)
    budget.add_epoch(1.0)
    assert budget.allows()
    budget.add_plotting(2.0)  # much dearer than expected
    budget.add_epoch(3.0)
    assert not budget.allows()  # 2 + 2 > 0.5 * 4
    budget.add_epoch(4.0)
    assert budget.allows()  # 2 + 2 <= 0.5 * 8
