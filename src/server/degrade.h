/* Graceful degradation (issue 13): a latency budget per turn (SG_LATENCY_BUDGET_MS). When the
 * queue's wait plus the turn's expected service time would break the budget, the turn steps down a
 * ladder of cheaper steps instead of queueing behind full-price work:
 *
 *   rung 1  llm    fewer-tokens      (half of max_tokens, at least SG_DEGRADE_MIN_TOKENS)
 *   rung 2  vision remembered-scene  (a new frame is not analysed; the session's scene answers)
 *   rung 3  asr    fallback-model    (--asr-fallback-model, e.g. tiny for base)
 *   rung 4  llm    rule-based        (agent/responder.h)
 *
 * A rung is only taken when its stage's step exists (a fallback model is loaded, an LLM is) and
 * its estimated time is strictly below the step it replaces: degrading never makes a turn slower
 * than not degrading. The estimates are moving averages (EWMA) of measured stage times, per stage
 * and step; a step not yet measured is estimated from its stage's full step times a prior (the
 * fallback ASR: the ratio of the weights' sizes; fewer tokens: the ratio of the token counts;
 * the rule-based responder and the remembered scene: 0). The queue's wait is the larger of what
 * the turn has already waited and jobs queued behind it / workers x a job's mean service time.
 *
 * Down is at once; back up (hysteresis) only after recover_turns consecutive turns that would have
 * fitted within recover_frac of the budget at a lower rung, or after idle_reset_ms without a turn.
 *
 * The decision (sg_degrade_decide) is a pure function over an estimate and a state, unit-tested in
 * tests/test_degrade.c; sg_degrade wraps it with a lock for the server's workers. */
#ifndef SG_SERVER_DEGRADE_H
#define SG_SERVER_DEGRADE_H

#include <stdbool.h>

typedef enum sg_deg_stage { SG_DEG_ASR = 0, SG_DEG_LLM, SG_DEG_VISION, SG_DEG_STAGES } sg_deg_stage;

#define SG_DEG_LEVELS 3     /* steps per stage at most: 0 = normal */
#define SG_DEG_RUNGS 4      /* the ladder above */
#define SG_DEGRADE_MIN_TOKENS 16

/* "asr", "llm", "vision": the metrics' stage label */
const char *sg_deg_stage_name(sg_deg_stage s);
/* The step's name in metadata.degraded ("fallback-model", "fewer-tokens", "rule-based",
 * "remembered-scene"); NULL for level 0 or a level the stage does not have. */
const char *sg_deg_step_name(sg_deg_stage s, int level);

typedef struct sg_degrade_cfg {
    double budget_ms;      /* <= 0: degradation off */
    double recover_frac;   /* step back up below this share of the budget (0.7) */
    int recover_turns;     /* ... for this many consecutive turns (3) */
    double idle_reset_ms;  /* or after this long without a turn (10 s) */
    int workers;           /* work-queue threads */
    bool available[SG_DEG_STAGES][SG_DEG_LEVELS]; /* the step exists (level 0 always) */
    double prior[SG_DEG_STAGES][SG_DEG_LEVELS];   /* an unmeasured step's estimate / level 0's */
} sg_degrade_cfg;

/* Defaults: the ladder's steps all present except the ASR fallback, priors as above. */
void sg_degrade_cfg_defaults(sg_degrade_cfg *c, double budget_ms, int workers);

typedef struct sg_degrade_est {
    double stage[SG_DEG_STAGES][SG_DEG_LEVELS]; /* ms, EWMA; < 0: never measured */
    double rest;   /* ms: a turn's service time beyond the three stages (VAD, decode, prompt) */
    double job;    /* ms: one work-queue job's service time (any job) */
} sg_degrade_est;

void sg_degrade_est_init(sg_degrade_est *e);
/* Folds one measurement into an EWMA (the first one is taken as it is). */
void sg_degrade_ewma(double *avg, double sample_ms);
/* The estimate used for a step: measured, else level 0's x the prior, else 0 (nothing known). */
double sg_degrade_step_ms(const sg_degrade_cfg *c, const sg_degrade_est *e, sg_deg_stage s,
                          int level);

typedef struct sg_degrade_state {
    int rung;         /* rungs in effect, 0 = normal */
    int calm;         /* consecutive turns that would have fitted lower */
    int calm_rung;    /* the deepest rung those turns needed */
    double last_ms;   /* the last decision's time, 0 = none yet */
} sg_degrade_state;

/* What one turn brings to the decision. */
typedef struct sg_turn_load {
    bool uses[SG_DEG_STAGES]; /* audio to transcribe, an LLM to ask, an image to analyse */
    bool has_scene;           /* the session remembers a scene (the vision step needs one) */
    double waited_ms;         /* since the request arrived */
    int queued;               /* jobs waiting for a worker */
    double now_ms;
} sg_turn_load;

typedef struct sg_degrade_plan {
    int rung;                       /* in effect after this decision */
    int level[SG_DEG_STAGES];       /* the step per stage for this turn (0 = normal) */
    int stage_level[SG_DEG_STAGES]; /* the step per stage the rung stands for (the gauges) */
    double predicted_ms;            /* wait + service at the plan */
    double undegraded_ms;           /* wait + service at rung 0 */
} sg_degrade_plan;

/* The steps rung r stands for, per stage: rungs whose step is unavailable or not faster than the
 * one it replaces are skipped. */
void sg_degrade_levels(const sg_degrade_cfg *c, const sg_degrade_est *e, int rung,
                       int level[SG_DEG_STAGES]);
/* The predicted latency of the turn at rung r (level: the turn's steps, may be NULL). */
double sg_degrade_predict(const sg_degrade_cfg *c, const sg_degrade_est *e, const sg_turn_load *t,
                          int rung, int level[SG_DEG_STAGES]);
/* Decides one turn's steps and moves the state (down at once, up with hysteresis). */
sg_degrade_plan sg_degrade_decide(const sg_degrade_cfg *c, const sg_degrade_est *e,
                                  sg_degrade_state *st, const sg_turn_load *t);
/* Without turns: after idle_reset_ms the rung goes back to 0. True when it changed. */
bool sg_degrade_idle(const sg_degrade_cfg *c, sg_degrade_state *st, double now_ms);

/* ---- the server's controller: the above behind a lock ------------------------------------- */

typedef struct sg_degrade sg_degrade;

sg_degrade *sg_degrade_new(const sg_degrade_cfg *c);
void sg_degrade_free(sg_degrade *d);
bool sg_degrade_enabled(const sg_degrade *d);
/* Sets a step's availability and prior after the models have loaded. */
void sg_degrade_set_step(sg_degrade *d, sg_deg_stage s, int level, bool available, double prior);
sg_degrade_plan sg_degrade_plan_turn(sg_degrade *d, const sg_turn_load *t);

/* What a turn measured: each stage's time (< 0: did not run) and the step it ran at. */
typedef struct sg_degrade_sample {
    double ms[SG_DEG_STAGES];
    int level[SG_DEG_STAGES];
    double service_ms; /* the whole turn on its worker */
} sg_degrade_sample;
void sg_degrade_observe_turn(sg_degrade *d, const sg_degrade_sample *s);
void sg_degrade_observe_job(sg_degrade *d, double ms);
/* The per-stage steps in effect now (after an idle reset when one is due). */
void sg_degrade_levels_now(sg_degrade *d, double now_ms, int level[SG_DEG_STAGES]);

#endif
