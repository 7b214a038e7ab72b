/* The degradation ladder's decision (pure) and the server's locked controller around it. */
#include "server/degrade.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The ladder, in the order it is stepped down: the cheapest loss of quality first. */
static const struct {
    sg_deg_stage stage;
    int level;
} ladder[SG_DEG_RUNGS] = {
    {SG_DEG_LLM, 1},    /* fewer tokens */
    {SG_DEG_VISION, 1}, /* the remembered scene */
    {SG_DEG_ASR, 1},    /* the fallback Whisper */
    {SG_DEG_LLM, 2},    /* the rule-based responder */
};

/* The weight of a new sample in the moving estimates: about the last 5 turns count. */
#define EWMA_ALPHA 0.2

const char *sg_deg_stage_name(sg_deg_stage s)
{
    static const char *const names[SG_DEG_STAGES] = {"asr", "llm", "vision"};
    return (unsigned)s < SG_DEG_STAGES ? names[s] : "?";
}

const char *sg_deg_step_name(sg_deg_stage s, int level)
{
    static const char *const steps[SG_DEG_STAGES][SG_DEG_LEVELS] = {
        {NULL, "fallback-model", NULL},
        {NULL, "fewer-tokens", "rule-based"},
        {NULL, "remembered-scene", NULL},
    };
    if ((unsigned)s >= SG_DEG_STAGES || level < 0 || level >= SG_DEG_LEVELS)
        return NULL;
    return steps[s][level];
}

void sg_degrade_cfg_defaults(sg_degrade_cfg *c, double budget_ms, int workers)
{
    memset(c, 0, sizeof *c);
    c->budget_ms = budget_ms;
    c->recover_frac = 0.7;
    c->recover_turns = 3;
    c->idle_reset_ms = 10000;
    c->workers = workers > 0 ? workers : 1;
    for (int s = 0; s < SG_DEG_STAGES; s++) {
        c->available[s][0] = true;
        c->prior[s][0] = 1;
    }
    c->available[SG_DEG_LLM][1] = c->available[SG_DEG_LLM][2] = true;
    c->prior[SG_DEG_LLM][1] = 0.5; /* half the tokens: generation is linear in them */
    c->prior[SG_DEG_LLM][2] = 0;   /* the responder: microseconds */
    c->available[SG_DEG_VISION][1] = true;
    c->prior[SG_DEG_VISION][1] = 0; /* no work at all */
    c->available[SG_DEG_ASR][1] = false; /* only with a fallback model (its prior set then) */
    c->prior[SG_DEG_ASR][1] = 1;
}

void sg_degrade_est_init(sg_degrade_est *e)
{
    for (int s = 0; s < SG_DEG_STAGES; s++)
        for (int l = 0; l < SG_DEG_LEVELS; l++)
            e->stage[s][l] = -1;
    e->rest = -1;
    e->job = -1;
}

void sg_degrade_ewma(double *avg, double sample_ms)
{
    if (sample_ms < 0)
        return;
    *avg = *avg < 0 ? sample_ms : *avg + EWMA_ALPHA * (sample_ms - *avg);
}

double sg_degrade_step_ms(const sg_degrade_cfg *c, const sg_degrade_est *e, sg_deg_stage s,
                          int level)
{
    if (e->stage[s][level] >= 0)
        return e->stage[s][level];
    if (level > 0 && e->stage[s][0] >= 0)
        return e->stage[s][0] * c->prior[s][level];
    return 0;
}

void sg_degrade_levels(const sg_degrade_cfg *c, const sg_degrade_est *e, int rung,
                       int level[SG_DEG_STAGES])
{
    for (int s = 0; s < SG_DEG_STAGES; s++)
        level[s] = 0;
    for (int r = 0; r < rung && r < SG_DEG_RUNGS; r++) {
        sg_deg_stage s = ladder[r].stage;
        int l = ladder[r].level;
        /* never slower: the step must exist and be estimated strictly faster than the step in
         * effect (an unmeasured stage is 0 everywhere, so it is never stepped down blind) */
        if (c->available[s][l] && sg_degrade_step_ms(c, e, s, l) < sg_degrade_step_ms(c, e, s, level[s]))
            level[s] = l;
    }
}

/* The turn's own steps: the rung's, but only for stages the turn uses, and the remembered scene
 * only when there is one. */
static void turn_levels(const sg_degrade_cfg *c, const sg_degrade_est *e, const sg_turn_load *t,
                        int rung, int level[SG_DEG_STAGES])
{
    sg_degrade_levels(c, e, rung, level);
    for (int s = 0; s < SG_DEG_STAGES; s++)
        if (!t->uses[s])
            level[s] = 0;
    if (!t->has_scene)
        level[SG_DEG_VISION] = 0;
}

double sg_degrade_predict(const sg_degrade_cfg *c, const sg_degrade_est *e, const sg_turn_load *t,
                          int rung, int level[SG_DEG_STAGES])
{
    int lv[SG_DEG_STAGES];
    turn_levels(c, e, t, rung, lv);
    if (level)
        memcpy(level, lv, sizeof lv);
    /* the queue's wait: what this turn has waited, or what the jobs queued now will make the next
     * one wait, whichever is larger */
    double wait = t->waited_ms > 0 ? t->waited_ms : 0;
    double ahead = e->job > 0 ? (double)t->queued / (double)c->workers * e->job : 0;
    if (ahead > wait)
        wait = ahead;
    double service = e->rest > 0 ? e->rest : 0;
    for (int s = 0; s < SG_DEG_STAGES; s++)
        if (t->uses[s])
            service += sg_degrade_step_ms(c, e, (sg_deg_stage)s, lv[s]);
    return wait + service;
}

/* The shallowest rung predicted within limit_ms; else the one predicted fastest (the shallowest
 * of equals: a rung that saves nothing is not taken). */
static int rung_within(const sg_degrade_cfg *c, const sg_degrade_est *e, const sg_turn_load *t,
                       double limit_ms)
{
    int best = 0;
    double best_ms = 0;
    for (int r = 0; r <= SG_DEG_RUNGS; r++) {
        double p = sg_degrade_predict(c, e, t, r, NULL);
        if (p <= limit_ms)
            return r;
        if (r == 0 || p < best_ms) {
            best = r;
            best_ms = p;
        }
    }
    return best;
}

bool sg_degrade_idle(const sg_degrade_cfg *c, sg_degrade_state *st, double now_ms)
{
    if (st->rung == 0 || st->last_ms <= 0 || now_ms - st->last_ms < c->idle_reset_ms)
        return false;
    st->rung = 0;
    st->calm = 0;
    return true;
}

sg_degrade_plan sg_degrade_decide(const sg_degrade_cfg *c, const sg_degrade_est *e,
                                  sg_degrade_state *st, const sg_turn_load *t)
{
    sg_degrade_plan p;
    memset(&p, 0, sizeof p);
    if (c->budget_ms <= 0) {
        p.predicted_ms = p.undegraded_ms = sg_degrade_predict(c, e, t, 0, NULL);
        return p;
    }
    sg_degrade_idle(c, st, t->now_ms);
    st->last_ms = t->now_ms;
    int need = rung_within(c, e, t, c->budget_ms);
    int calm_need = rung_within(c, e, t, c->recover_frac * c->budget_ms);
    if (need > st->rung) { /* down at once */
        st->rung = need;
        st->calm = 0;
    } else if (calm_need < st->rung) { /* up after recover_turns calm turns in a row */
        st->calm_rung = st->calm == 0 || calm_need > st->calm_rung ? calm_need : st->calm_rung;
        if (++st->calm >= c->recover_turns) {
            st->rung = st->calm_rung;
            st->calm = 0;
        }
    } else {
        st->calm = 0;
    }
    p.rung = st->rung;
    p.predicted_ms = sg_degrade_predict(c, e, t, p.rung, p.level);
    p.undegraded_ms = sg_degrade_predict(c, e, t, 0, NULL);
    sg_degrade_levels(c, e, p.rung, p.stage_level);
    return p;
}

/* ---- the server's controller ---------------------------------------------------------------- */

struct sg_degrade {
    pthread_mutex_t lock;
    sg_degrade_cfg cfg;
    sg_degrade_est est;
    sg_degrade_state st;
};

sg_degrade *sg_degrade_new(const sg_degrade_cfg *c)
{
    sg_degrade *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->lock, NULL);
    d->cfg = *c;
    sg_degrade_est_init(&d->est);
    return d;
}

void sg_degrade_free(sg_degrade *d)
{
    if (!d)
        return;
    pthread_mutex_destroy(&d->lock);
    free(d);
}

bool sg_degrade_enabled(const sg_degrade *d) { return d && d->cfg.budget_ms > 0; }

void sg_degrade_set_step(sg_degrade *d, sg_deg_stage s, int level, bool available, double prior)
{
    if ((unsigned)s >= SG_DEG_STAGES || level <= 0 || level >= SG_DEG_LEVELS)
        return;
    pthread_mutex_lock(&d->lock);
    d->cfg.available[s][level] = available;
    d->cfg.prior[s][level] = prior;
    pthread_mutex_unlock(&d->lock);
}

sg_degrade_plan sg_degrade_plan_turn(sg_degrade *d, const sg_turn_load *t)
{
    pthread_mutex_lock(&d->lock);
    sg_degrade_plan p = sg_degrade_decide(&d->cfg, &d->est, &d->st, t);
    pthread_mutex_unlock(&d->lock);
    return p;
}

void sg_degrade_observe_turn(sg_degrade *d, const sg_degrade_sample *s)
{
    pthread_mutex_lock(&d->lock);
    double rest = s->service_ms;
    for (int k = 0; k < SG_DEG_STAGES; k++) {
        if (s->ms[k] < 0 || s->level[k] < 0 || s->level[k] >= SG_DEG_LEVELS)
            continue;
        sg_degrade_ewma(&d->est.stage[k][s->level[k]], s->ms[k]);
        rest -= s->ms[k];
    }
    sg_degrade_ewma(&d->est.rest, rest > 0 ? rest : 0);
    pthread_mutex_unlock(&d->lock);
}

void sg_degrade_observe_job(sg_degrade *d, double ms)
{
    pthread_mutex_lock(&d->lock);
    sg_degrade_ewma(&d->est.job, ms);
    pthread_mutex_unlock(&d->lock);
}

void sg_degrade_levels_now(sg_degrade *d, double now_ms, int level[SG_DEG_STAGES])
{
    pthread_mutex_lock(&d->lock);
    sg_degrade_idle(&d->cfg, &d->st, now_ms);
    sg_degrade_levels(&d->cfg, &d->est, d->st.rung, level);
    pthread_mutex_unlock(&d->lock);
}
