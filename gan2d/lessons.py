"""Lessons: short guided walks through the lab, one idea per step.

A ``Lesson`` is data: a name (its URL: ``/app?lesson=mode-collapse&step=2``), a title
and its ``Step``s. A step sets a preset and settings on top of it, a speed, which tab
is shown (``"Theory/Divergences"`` picks a tab inside a tab) and which controls and
plots are hidden; it names the plot it talks about (``plot``), says what to look at
and asks one question whose answer is on the screen. ``tests/test_lessons.py`` checks
that every step's settings validate and every tab, plot and control it names exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: the page's tabs, and the Theory tab's own tabs (``gan2d.ui.page``, ``gan2d.ui.theory``)
TABS = ("Lab", "Theory", "Compare", "Sweep")
THEORY_TABS = ("xy game", "Dirac-GAN", "Divergences", "KL vs reverse KL")
#: what a lesson step hides unless it says otherwise: the sidebar of controls
HIDE_CONTROLS = ("controls",)


@dataclass(frozen=True)
class Step:
    title: str
    text: str  # what to look at, on which plot (two or three sentences)
    question: str  # one question the screen answers
    preset: str = "wgan-gp"
    settings: dict[str, str] = field(default_factory=dict)  # on top of the preset
    speed: int | None = None  # None: the preset's own
    tab: str = "Lab"  # "Theory/Divergences": the Theory tab, its Divergences tab
    plot: str = "field"  # the plot the step talks about (a key of gan2d.ui.settings.PLOTS)
    hide: tuple[str, ...] = HIDE_CONTROLS
    play: bool = True  # start the run when the step opens (False: the student steps it)


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    summary: str
    steps: tuple[Step, ...]


_ROTATE = {  # a fast generator and a slow critic: the fakes move from mode to mode
    "data_std": "0.02",
    "d_steps": "1",
    "z_dim": "2",
    "prior": "gaussian",
    "loss": "minimax",
    "optimizer": "adam",
    "lr_g": "1e-3",
    "lr_d": "1e-4",
    "beta1": "0.5",
    "beta2": "0.999",
}

LESSONS: dict[str, Lesson] = {
    lesson.name: lesson
    for lesson in [
        Lesson(
            "mode-collapse",
            "Mode collapse",
            "Why a generator gives up most of the data, and four ways to stop it.",
            (
                Step(
                    "The collapse",
                    "The GAN of the original paper, with its non-saturating loss and plain "
                    "SGD. The orange fakes shrink into one clump that sits on a single "
                    "mode. Watch the critic's colours under it: once the critic has learnt "
                    "that spot is fake, the clump jumps to another mode.",
                    "How many different modes has the clump sat on by step 10,000?",
                    preset="vanilla-collapse",
                ),
                Step(
                    "The chase",
                    "Now the minimax loss with Adam, and a generator that learns ten times "
                    "faster than its critic. The fakes crowd into a clump where the critic "
                    "likes them; the critic learns that spot is fake, and the clump moves "
                    "on, but it never settles: the modes curve stays near zero, since a "
                    "clump between the modes covers none of them.",
                    "Does the clump stay in one place for the whole run?",
                    preset="vanilla-collapse",
                    settings=_ROTATE,
                    plot="modes",
                ),
                Step(
                    "Unrolling",
                    "The same minimax loss, but each generator step looks 5 critic updates "
                    "ahead and follows the gradient through them. Parking on one mode no "
                    "longer pays, because the generator sees the critic's answer coming.",
                    "How many modes are covered when the run reaches its length?",
                    preset="unrolled",
                ),
                Step(
                    "Packing",
                    "The chasing settings from step 2 again, with one change: the critic "
                    "judges the samples four at a time (pack=4). Four fakes from one "
                    "collapsed spot look alike, which four real points rarely do, so the "
                    "critic can punish a collapse it could not see in one sample.",
                    "Does the modes curve climb higher than it did in step 2?",
                    preset="vanilla-collapse",
                    settings={**_ROTATE, "pack": "4"},
                    plot="modes",
                ),
                Step(
                    "Minibatch features",
                    "Here the critic gets one more input: how spread out the whole batch "
                    "is (the minibatch standard deviation). A batch of collapsed fakes has "
                    "a tiny spread, a cue the generator can only remove by spreading out.",
                    "Compare the modes curve with step 2: which run covers more modes?",
                    preset="vanilla-collapse",
                    settings={**_ROTATE, "minibatch_std": "true"},
                    plot="modes",
                ),
                Step(
                    "Several generators",
                    "Eight small generators share the work, each drawn in its own colour. "
                    "Each can settle on a mode of its own, so together they cover the ring "
                    "without any one of them having to spread.",
                    "Does each colour end on a mode of its own?",
                    preset="best-ring8",
                ),
            ),
        ),
        Lesson(
            "vanishing-gradients",
            "Vanishing gradients",
            "A critic that wins too easily tells the generator nothing; two losses that "
            "keep the signal alive.",
            (
                Step(
                    "A critic that wins",
                    "The saturating minimax loss, with a critic that trains five times per "
                    "generator step and ten times faster. Watch the gradient-norm plot (log "
                    "scale): within a few hundred steps G's gradient falls towards nothing, "
                    "and the fakes on the map stop moving.",
                    "By how many powers of ten does G's gradient norm fall?",
                    preset="vanishing-gradients",
                    plot="grads",
                ),
                Step(
                    "Freeze the generator",
                    "The run is paused. Press Step D again and again: only the critic "
                    "trains. Watch D(real) vs D(fake): within twenty presses the fakes' "
                    "scores slide towards 0, and the generator's gradient falls with them.",
                    "After twenty presses of Step D, where do the fakes' D scores sit?",
                    preset="vanishing-gradients",
                    plot="hist",
                    play=False,
                ),
                Step(
                    "The non-saturating loss",
                    "Same networks, same strong critic; only the generator's loss changes, "
                    "from minimising log(1 − D(G(z))) to maximising log D(G(z)). That loss "
                    "is steepest exactly where the critic is sure, so the gradient stays.",
                    "Does G's gradient norm still fall away?",
                    preset="vanishing-gradients",
                    settings={"loss": "ns"},
                    plot="grads",
                ),
                Step(
                    "A Wasserstein critic",
                    "WGAN-GP: the critic scores, not a probability, and a gradient penalty "
                    "keeps its slope near 1. Look at the arrows on the map: every fake, even "
                    "far from the data, is pushed towards a mode.",
                    "Are there fakes whose arrows are too short to see?",
                    preset="wgan-gp",
                ),
            ),
        ),
        Lesson(
            "why-wasserstein",
            "Why Wasserstein",
            "Jensen-Shannon goes flat when the distributions do not overlap; the "
            "Wasserstein distance does not. Two ways to build a Wasserstein critic.",
            (
                Step(
                    "JS saturates",
                    "Two copies of the same distribution, one shifted. Drag the shift: once "
                    "they stop overlapping, JS stays at log 2 and its gradient is 0, while "
                    "W1 keeps growing with slope 1.",
                    "At a shift where the two no longer overlap, what is JS's gradient?",
                    tab="Theory/Divergences",
                ),
                Step(
                    "W does not",
                    "A WGAN-GP run in the lab. The W1 plot is the distance JS could not "
                    "measure: it falls steadily while the fakes move onto the ring.",
                    "Does the W1 curve ever sit still for long?",
                    preset="wgan-gp",
                    plot="w1",
                ),
                Step(
                    "Weight clipping",
                    "The first WGAN kept its critic smooth by clipping every weight to "
                    "±0.05. Look at the critic's colours: the map is almost a plane, a "
                    "critic with too little freedom, and the fakes drift slowly.",
                    "Is the critic's map curved around the modes, or nearly flat?",
                    preset="wgan-clip",
                ),
                Step(
                    "The gradient penalty",
                    "WGAN-GP instead asks the critic's slope to be 1 where it matters, and "
                    "lets the weights be. Compare the map and the W1 plot with the clipped "
                    "critic of the last step.",
                    "Which critic's map has contours that follow the ring?",
                    preset="wgan-gp",
                    plot="w1",
                ),
            ),
        ),
        Lesson(
            "non-convergence",
            "Non-convergence",
            "Two players taking gradient steps need not meet: spirals, orbits, and what "
            "makes them converge.",
            (
                Step(
                    "The xy game",
                    "One player minimises x·y over x, the other maximises it over y. The "
                    "answer is (0, 0), yet simultaneous gradient steps spiral outwards. "
                    "Compare it with alternating steps and the other update rules.",
                    "Which update rule moves away from (0, 0)?",
                    tab="Theory/xy game",
                ),
                Step(
                    "Dirac-GAN",
                    "The smallest GAN: the data is one point, the generator one point, the "
                    "critic a line. Without help the training circles the answer; raise the "
                    "R1 penalty or the instance noise and watch the circles close.",
                    "Which setting makes the path end at the centre?",
                    tab="Theory/Dirac-GAN",
                ),
                Step(
                    "Oscillation in the lab",
                    "A non-saturating GAN with large learning rates for both players. "
                    "Watch the loss curves and the fakes on the map: two players chasing "
                    "each other is the 2D version of the circles you just saw.",
                    "Do the two losses settle on a value?",
                    preset="ns-gan",
                    settings={"lr_g": "1e-3", "lr_d": "1e-3"},
                    plot="losses",
                ),
                Step(
                    "Regularised",
                    "The same loss with an R1 penalty on the critic's slope at the real "
                    "points, the fix that closed the circles of Dirac-GAN. Watch D(real) "
                    "vs D(fake) and the losses as the run goes on.",
                    "Do the losses swing less than in the last step?",
                    preset="r1",
                    plot="hist",
                ),
            ),
        ),
        Lesson(
            "loss-is-not-quality",
            "The loss is not the quality",
            "Read the metrics, not the loss; and run a setting on several seeds before "
            "you believe it.",
            (
                Step(
                    "Loss next to quality",
                    "A non-saturating GAN. Read the loss curves beside the modes and HQ "
                    "plot while the modes fill in, and ask which of the two tells you how "
                    "good the samples are.",
                    "Could you tell from the loss curves when the last mode was covered?",
                    preset="ns-gan",
                    plot="losses",
                ),
                Step(
                    "A critic's loss that means something",
                    "With WGAN-GP the critic's loss estimates the distance between the "
                    "distributions (with its sign flipped). Compare it with the W1 plot.",
                    "Do the critic's loss and W1 move together?",
                    preset="wgan-gp",
                    plot="w1",
                ),
                Step(
                    "Seeds",
                    "The Sweep tab trains one setting over several seeds and learning rates "
                    "at once. Press Run sweep and look at the spread between the best and "
                    "the worst seed of the same setting.",
                    "How far apart are the best and worst seed of one setting?",
                    tab="Sweep",
                ),
                Step(
                    "Side by side",
                    "The Compare tab trains up to four settings on the same seed, each on "
                    "its own map, with one metric chart. Claims that one loss beats another "
                    "should survive this, and the seeds of the last step.",
                    "Which run leads on the chart, and does it lead all the way?",
                    tab="Compare",
                ),
            ),
        ),
    ]
}


def get_lesson(name: str) -> Lesson:
    if name not in LESSONS:
        raise ValueError(f"unknown lesson {name!r}; choose one of {', '.join(LESSONS)}")
    return LESSONS[name]
