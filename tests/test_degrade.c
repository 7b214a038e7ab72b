/* The degradation ladder's decision (src/server/degrade.c), pure: under an estimated overload a
 * turn steps down only as far as it needs, never to a step that is not faster than the one it
 * replaces (unavailable, unmeasured or measured slower), comes back up only after calm turns
 * (hysteresis) or an idle spell, and a zero budget never degrades. */
#include <string.h>

#include "agent/slow.h"
#include "check.h"
#include "server/degrade.h"

/* A server of 2 workers and a 2 s budget whose stages have been measured at their full steps:
 * ASR 600 ms, LLM 800 ms, vision 300 ms, the rest 50 ms, a job 1000 ms. */
static void setup(sg_degrade_cfg *c, sg_degrade_est *e)
{
    sg_degrade_cfg_defaults(c, 2000, 2);
    sg_degrade_est_init(e);
    e->stage[SG_DEG_ASR][0] = 600;
    e->stage[SG_DEG_LLM][0] = 800;
    e->stage[SG_DEG_VISION][0] = 300;
    e->rest = 50;
    e->job = 1000;
}

static sg_turn_load full_turn(double waited, int queued, double now)
{
    sg_turn_load t = {.uses = {true, true, true}, .has_scene = true, .waited_ms = waited,
                      .queued = queued, .now_ms = now};
    return t;
}

static void test_names(void)
{
    CHECK(strcmp(sg_deg_stage_name(SG_DEG_ASR), "asr") == 0);
    CHECK(strcmp(sg_deg_stage_name(SG_DEG_LLM), "llm") == 0);
    CHECK(strcmp(sg_deg_stage_name(SG_DEG_VISION), "vision") == 0);
    CHECK(sg_deg_step_name(SG_DEG_LLM, 0) == NULL);
    CHECK(strcmp(sg_deg_step_name(SG_DEG_LLM, 1), "fewer-tokens") == 0);
    CHECK(strcmp(sg_deg_step_name(SG_DEG_LLM, 2), "rule-based") == 0);
    CHECK(strcmp(sg_deg_step_name(SG_DEG_ASR, 1), "fallback-model") == 0);
    CHECK(strcmp(sg_deg_step_name(SG_DEG_VISION, 1), "remembered-scene") == 0);
    CHECK(sg_deg_step_name(SG_DEG_VISION, 2) == NULL);
    CHECK(sg_deg_step_name(SG_DEG_STAGES, 1) == NULL);
}

static void test_ewma(void)
{
    double a = -1;
    sg_degrade_ewma(&a, 100);
    CHECK_NEAR(a, 100, 1e-9); /* the first sample is taken as it is */
    sg_degrade_ewma(&a, 200);
    CHECK_NEAR(a, 120, 1e-9);
    sg_degrade_ewma(&a, -5); /* a stage that did not run is no sample */
    CHECK_NEAR(a, 120, 1e-9);
    for (int i = 0; i < 100; i++)
        sg_degrade_ewma(&a, 10);
    CHECK_NEAR(a, 10, 1e-3); /* it moves: old load is forgotten */
}

static void test_estimates(void)
{
    sg_degrade_cfg c;
    sg_degrade_est e;
    setup(&c, &e);
    CHECK_NEAR(sg_degrade_step_ms(&c, &e, SG_DEG_LLM, 1), 400, 1e-9);   /* prior: half */
    CHECK_NEAR(sg_degrade_step_ms(&c, &e, SG_DEG_LLM, 2), 0, 1e-9);     /* the responder */
    CHECK_NEAR(sg_degrade_step_ms(&c, &e, SG_DEG_VISION, 1), 0, 1e-9);
    e.stage[SG_DEG_LLM][1] = 500; /* measured wins over the prior */
    CHECK_NEAR(sg_degrade_step_ms(&c, &e, SG_DEG_LLM, 1), 500, 1e-9);
    /* idle server: the full turn fits; 50 + 600 + 800 + 300 */
    sg_turn_load t = full_turn(0, 0, 1000);
    CHECK_NEAR(sg_degrade_predict(&c, &e, &t, 0, NULL), 1750, 1e-9);
    /* the queue's wait: 4 queued / 2 workers x 1000 ms, larger than the 300 ms waited */
    t = full_turn(300, 4, 1000);
    CHECK_NEAR(sg_degrade_predict(&c, &e, &t, 0, NULL), 2000 + 1750, 1e-9);
    /* what was waited, when larger */
    t = full_turn(2500, 1, 1000);
    CHECK_NEAR(sg_degrade_predict(&c, &e, &t, 0, NULL), 2500 + 1750, 1e-9);
    /* a text-only turn does not pay for audio or an image */
    t.uses[SG_DEG_ASR] = t.uses[SG_DEG_VISION] = false;
    t.waited_ms = 0;
    t.queued = 0;
    CHECK_NEAR(sg_degrade_predict(&c, &e, &t, 0, NULL), 850, 1e-9);
}

static void test_steps_down_as_far_as_needed(void)
{
    sg_degrade_cfg c;
    sg_degrade_est e;
    setup(&c, &e);
    sg_degrade_state st = {0};
    /* 1750 ms: within the budget, nothing changes */
    sg_turn_load t = full_turn(0, 0, 1000);
    sg_degrade_plan p = sg_degrade_decide(&c, &e, &st, &t);
    CHECK_EQ_INT(p.rung, 0);
    CHECK(p.level[SG_DEG_ASR] == 0 && p.level[SG_DEG_LLM] == 0 && p.level[SG_DEG_VISION] == 0);
    /* waited 500: 2250 at full; fewer tokens (-400) gives 1850: one rung is enough */
    t = full_turn(500, 0, 2000);
    p = sg_degrade_decide(&c, &e, &st, &t);
    CHECK_EQ_INT(p.rung, 1);
    CHECK_EQ_INT(p.level[SG_DEG_LLM], 1);
    CHECK_EQ_INT(p.level[SG_DEG_VISION], 0);
    CHECK_NEAR(p.predicted_ms, 1850, 1e-9);
    CHECK_NEAR(p.undegraded_ms, 2250, 1e-9);
    CHECK(p.predicted_ms <= c.budget_ms);
    /* waited 900: 2650; fewer tokens 2250, the remembered scene too 1950 */
    t = full_turn(900, 0, 3000);
    p = sg_degrade_decide(&c, &e, &st, &t);
    CHECK_EQ_INT(p.rung, 2);
    CHECK(p.level[SG_DEG_LLM] == 1 && p.level[SG_DEG_VISION] == 1 && p.level[SG_DEG_ASR] == 0);
    /* no ASR fallback loaded: rung 3 is skipped, rung 4 (rule-based) is the bottom */
    t = full_turn(0, 10, 4000); /* 5000 ms of queue */
    p = sg_degrade_decide(&c, &e, &st, &t);
    CHECK_EQ_INT(p.rung, 4);
    CHECK(p.level[SG_DEG_LLM] == 2 && p.level[SG_DEG_VISION] == 1 && p.level[SG_DEG_ASR] == 0);
    CHECK(p.predicted_ms < p.undegraded_ms);
    CHECK(p.stage_level[SG_DEG_LLM] == 2 && p.stage_level[SG_DEG_VISION] == 1 &&
          p.stage_level[SG_DEG_ASR] == 0);
    /* with a fallback Whisper (a third of the weights) the ASR steps down too */
    c.available[SG_DEG_ASR][1] = true;
    c.prior[SG_DEG_ASR][1] = 0.33;
    p = sg_degrade_decide(&c, &e, &st, &t);
    CHECK_EQ_INT(p.level[SG_DEG_ASR], 1);
    CHECK_NEAR(p.predicted_ms, 5000 + 50 + 600 * 0.33, 1e-9);
}

/* The turn's own steps: the remembered scene needs a scene, and unused stages take no step. */
static void test_turn_applicability(void)
{
    sg_degrade_cfg c;
    sg_degrade_est e;
    setup(&c, &e);
    sg_degrade_state st = {0};
    sg_turn_load t = full_turn(0, 10, 1000);
    t.has_scene = false; /* a first frame: vision still runs */
    sg_degrade_plan p = sg_degrade_decide(&c, &e, &st, &t);
    CHECK_EQ_INT(p.rung, 4);
    CHECK_EQ_INT(p.level[SG_DEG_VISION], 0);
    CHECK_EQ_INT(p.stage_level[SG_DEG_VISION], 1); /* the server's level is still stepped down */
    t = full_turn(0, 10, 1100);
    t.uses[SG_DEG_ASR] = t.uses[SG_DEG_VISION] = false;
    p = sg_degrade_decide(&c, &e, &st, &t);
    CHECK(p.level[SG_DEG_ASR] == 0 && p.level[SG_DEG_VISION] == 0 && p.level[SG_DEG_LLM] == 2);
}

/* Never slower: a step is skipped when it is not estimated strictly faster than the step it
 * replaces, and a stage never measured is never stepped down blind. */
static void test_never_slower(void)
{
    sg_degrade_cfg c;
    sg_degrade_est e;
    setup(&c, &e);
    int lv[SG_DEG_STAGES];
    /* fewer tokens measured slower than full (a cold cache, say): skipped, the responder not */
    e.stage[SG_DEG_LLM][1] = 900;
    sg_degrade_levels(&c, &e, 1, lv);
    CHECK_EQ_INT(lv[SG_DEG_LLM], 0);
    sg_degrade_levels(&c, &e, SG_DEG_RUNGS, lv);
    CHECK_EQ_INT(lv[SG_DEG_LLM], 2);
    /* the responder measured slower than fewer tokens: stays at fewer tokens */
    e.stage[SG_DEG_LLM][1] = 300;
    e.stage[SG_DEG_LLM][2] = 350;
    sg_degrade_levels(&c, &e, SG_DEG_RUNGS, lv);
    CHECK_EQ_INT(lv[SG_DEG_LLM], 1);
    /* a fallback Whisper as large as the model (the tiny one as its own fallback): never taken */
    c.available[SG_DEG_ASR][1] = true;
    c.prior[SG_DEG_ASR][1] = 1.0;
    sg_degrade_levels(&c, &e, SG_DEG_RUNGS, lv);
    CHECK_EQ_INT(lv[SG_DEG_ASR], 0);
    /* ... until measured faster */
    e.stage[SG_DEG_ASR][1] = 200;
    sg_degrade_levels(&c, &e, SG_DEG_RUNGS, lv);
    CHECK_EQ_INT(lv[SG_DEG_ASR], 1);
    /* nothing measured at all: no rung changes anything, and none is taken */
    sg_degrade_est blank;
    sg_degrade_est_init(&blank);
    sg_degrade_state st = {0};
    sg_turn_load t = full_turn(5000, 50, 1000);
    sg_degrade_plan p = sg_degrade_decide(&c, &blank, &st, &t);
    CHECK_EQ_INT(p.rung, 0);
    CHECK(p.level[SG_DEG_ASR] == 0 && p.level[SG_DEG_LLM] == 0 && p.level[SG_DEG_VISION] == 0);

    /* over random estimates and loads: the plan is never predicted slower than no plan, and each
     * stage's chosen step is never estimated slower than its full step */
    unsigned seed = 12345;
    for (int i = 0; i < 20000; i++) {
        sg_degrade_est r;
        sg_degrade_est_init(&r);
        for (int s = 0; s < SG_DEG_STAGES; s++)
            for (int l = 0; l < SG_DEG_LEVELS; l++) {
                seed = seed * 1103515245u + 12345u;
                unsigned v = (seed >> 8) % 1500;
                r.stage[s][l] = v < 200 ? -1 : (double)v; /* some never measured */
            }
        seed = seed * 1103515245u + 12345u;
        r.rest = (double)((seed >> 8) % 200);
        r.job = (double)((seed >> 4) % 2000);
        sg_degrade_cfg rc = c;
        rc.available[SG_DEG_ASR][1] = (seed >> 20) & 1;
        sg_degrade_state rst = {.rung = (int)((seed >> 12) % (SG_DEG_RUNGS + 1))};
        sg_turn_load rt = {.uses = {(seed >> 21) & 1, (seed >> 22) & 1, (seed >> 23) & 1},
                           .has_scene = (seed >> 24) & 1, .waited_ms = (double)((seed >> 5) % 3000),
                           .queued = (int)((seed >> 9) % 8), .now_ms = 1000};
        sg_degrade_plan rp = sg_degrade_decide(&rc, &r, &rst, &rt);
        CHECK_MSG(rp.predicted_ms <= rp.undegraded_ms + 1e-9, "case %d: %.1f > %.1f", i,
                  rp.predicted_ms, rp.undegraded_ms);
        for (int s = 0; s < SG_DEG_STAGES; s++) {
            double full = sg_degrade_step_ms(&rc, &r, (sg_deg_stage)s, 0);
            double got = sg_degrade_step_ms(&rc, &r, (sg_deg_stage)s, rp.level[s]);
            if (rp.level[s] > 0)
                CHECK_MSG(got < full, "case %d: stage %d step %d %.1f >= %.1f", i, s, rp.level[s],
                          got, full);
        }
        if (check_failed)
            break;
    }
}

/* Back up with hysteresis: only after recover_turns turns in a row that would fit within 70% of the
 * budget, to the deepest rung those turns needed; one busy turn in between starts over. */
static void test_hysteresis(void)
{
    sg_degrade_cfg c;
    sg_degrade_est e;
    setup(&c, &e);
    sg_degrade_state st = {0};
    double now = 1000;
    sg_turn_load t = full_turn(0, 10, now);
    sg_degrade_plan p = sg_degrade_decide(&c, &e, &st, &t);
    CHECK_EQ_INT(p.rung, 4);
    /* waited 400: 2150 at full, 1750 with fewer tokens; within 70% (1400) only with the
     * responder (1050): stays down */
    for (int i = 0; i < 10; i++) {
        t = full_turn(400, 0, now += 100);
        p = sg_degrade_decide(&c, &e, &st, &t);
        CHECK_EQ_INT(p.rung, 4);
    }
    /* a text-only turn of 850 ms fits within 70% at full: two calm turns are not enough */
    sg_turn_load calm = full_turn(0, 0, 0);
    calm.uses[SG_DEG_ASR] = calm.uses[SG_DEG_VISION] = false;
    calm.now_ms = now += 100;
    p = sg_degrade_decide(&c, &e, &st, &calm);
    calm.now_ms = now += 100;
    p = sg_degrade_decide(&c, &e, &st, &calm);
    CHECK_EQ_INT(p.rung, 4);
    /* a busy turn in between: the streak starts over */
    t = full_turn(400, 0, now += 100);
    p = sg_degrade_decide(&c, &e, &st, &t);
    CHECK_EQ_INT(p.rung, 4);
    for (int i = 0; i < 2; i++) {
        calm.now_ms = now += 100;
        p = sg_degrade_decide(&c, &e, &st, &calm);
        CHECK_EQ_INT(p.rung, 4);
    }
    calm.now_ms = now += 100;
    p = sg_degrade_decide(&c, &e, &st, &calm);
    CHECK_EQ_INT(p.rung, 0);
    CHECK(p.level[SG_DEG_LLM] == 0);
    /* calm turns that still need a rung come up only to it: text only, waited 600: 1450 at
     * full is over 70% (1400), 1050 with fewer tokens is not */
    t = full_turn(0, 10, now += 100);
    sg_degrade_decide(&c, &e, &st, &t);
    CHECK_EQ_INT(st.rung, 4);
    for (int i = 0; i < 3; i++) {
        calm.waited_ms = 600;
        calm.now_ms = now += 100;
        p = sg_degrade_decide(&c, &e, &st, &calm);
    }
    CHECK_EQ_INT(p.rung, 1);
    /* idle: no turn for idle_reset_ms brings the level back to 0 */
    t = full_turn(0, 10, now += 100);
    sg_degrade_decide(&c, &e, &st, &t);
    CHECK_EQ_INT(st.rung, 4);
    CHECK(!sg_degrade_idle(&c, &st, now + c.idle_reset_ms - 1));
    CHECK_EQ_INT(st.rung, 4);
    CHECK(sg_degrade_idle(&c, &st, now + c.idle_reset_ms));
    CHECK_EQ_INT(st.rung, 0);
}

static void test_budget_off(void)
{
    sg_degrade_cfg c;
    sg_degrade_est e;
    setup(&c, &e);
    c.budget_ms = 0;
    sg_degrade_state st = {0};
    sg_turn_load t = full_turn(10000, 100, 1000);
    sg_degrade_plan p = sg_degrade_decide(&c, &e, &st, &t);
    CHECK_EQ_INT(p.rung, 0);
    CHECK(p.level[SG_DEG_ASR] == 0 && p.level[SG_DEG_LLM] == 0 && p.level[SG_DEG_VISION] == 0);
    CHECK_EQ_INT(st.rung, 0);
}

/* The locked controller: observations move the estimates the decisions read. */
static void test_controller(void)
{
    sg_degrade_cfg c;
    sg_degrade_cfg_defaults(&c, 1000, 1);
    sg_degrade *d = sg_degrade_new(&c);
    CHECK(d && sg_degrade_enabled(d));
    if (!d)
        return;
    sg_turn_load t = full_turn(0, 5, 1000);
    /* nothing measured yet: no step is known to be faster */
    sg_degrade_plan p = sg_degrade_plan_turn(d, &t);
    CHECK_EQ_INT(p.level[SG_DEG_LLM], 0);
    sg_degrade_sample s = {.ms = {200, 300, 100}, .level = {0, 0, 0}, .service_ms = 700};
    sg_degrade_observe_turn(d, &s);
    sg_degrade_observe_job(d, 700);
    t.now_ms = 2000;
    p = sg_degrade_plan_turn(d, &t); /* 5 x 700 queued: over the budget at every rung */
    CHECK_EQ_INT(p.level[SG_DEG_LLM], 2);
    CHECK_EQ_INT(p.level[SG_DEG_VISION], 1);
    CHECK_EQ_INT(p.level[SG_DEG_ASR], 0); /* no fallback offered */
    CHECK_NEAR(p.undegraded_ms, 3500 + 100 + 600, 1e-6);
    sg_degrade_set_step(d, SG_DEG_ASR, 1, true, 0.5);
    t.now_ms = 2100;
    p = sg_degrade_plan_turn(d, &t);
    CHECK_EQ_INT(p.level[SG_DEG_ASR], 1);
    int lv[SG_DEG_STAGES];
    sg_degrade_levels_now(d, 2200, lv);
    CHECK(lv[SG_DEG_ASR] == 1 && lv[SG_DEG_LLM] == 2 && lv[SG_DEG_VISION] == 1);
    sg_degrade_levels_now(d, 2100 + c.idle_reset_ms, lv); /* idle: back to normal */
    CHECK(lv[SG_DEG_ASR] == 0 && lv[SG_DEG_LLM] == 0 && lv[SG_DEG_VISION] == 0);
    sg_degrade_free(d);
}

/* SG_DEBUG_MODEL_DELAY_MS's parser (simulated model cost for the load figures). */
static void test_model_delays(void)
{
    sg_model_delays d;
    sg_error err = {0};
    CHECK(sg_model_delays_parse("vision=300,asr=400,asr_fallback=120,llm=600", &d, &err) == SG_OK);
    CHECK(d.vision == 300 && d.asr == 400 && d.asr_fallback == 120 && d.llm == 600);
    CHECK(sg_model_delays_parse("llm=5", &d, &err) == SG_OK);
    CHECK(d.vision == 0 && d.asr == 0 && d.asr_fallback == 0 && d.llm == 5);
    CHECK(sg_model_delays_parse("", &d, &err) == SG_OK);
    static const char *const bad[] = {"llm", "llm=", "llm=-1", "llm=60001", "llm=1x", "gpu=3",
                                      "asr_fallbac=1", "vision=1,,", "llm=99999999999999999999",
                                      "=5", NULL};
    for (int i = 0; bad[i]; i++) {
        err.msg[0] = 0;
        CHECK_MSG(sg_model_delays_parse(bad[i], &d, &err) == SG_EINVAL && err.msg[0],
                  "\"%s\" accepted", bad[i]);
    }
}

int main(void)
{
    test_model_delays();
    test_names();
    test_ewma();
    test_estimates();
    test_steps_down_as_far_as_needed();
    test_turn_applicability();
    test_never_slower();
    test_hysteresis();
    test_budget_off();
    test_controller();
    return check_report("test_degrade");
}
