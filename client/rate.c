/* Adaptive frame rate, JPEG quality and the uplink estimate: the guide's tables as pure functions.
 *
 * The guide (SmartGlass-AI-Agent docs/PERFORMANCE_OPTIMIZATION.md, "Adaptive Frame Rate") gives
 * getOptimalFrameRate() and a "Configuration Matrix" that disagree on one row: the matrix says
 * 5 fps for battery > 60 % with an idle user, the code gives MEDIUM (10 fps). The rule is
 * the code's, and that is what this does. Other defects of the guide's Kotlin not copied: `targetFps`
 * is a val it reassigns, `(targetFps * 1.5).toInt()` turns LOW's 7.5 fps into 7 and then
 * `30 / 7` into every 4th frame (7.5 again, by luck), and HIGH x 1.5 = 45 would divide by zero. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sgclient_policy.h"

static const int mode_fps[SG_RATE_MODES] = {1, 5, 10, 30};
static const char *const mode_names[SG_RATE_MODES] = {"MINIMAL", "LOW", "MEDIUM", "HIGH"};

int sg_rate_mode_fps(sg_rate_mode m)
{
    return (m >= 0 && m < SG_RATE_MODES) ? mode_fps[m] : mode_fps[SG_RATE_MINIMAL];
}

const char *sg_rate_mode_name(sg_rate_mode m)
{
    return (m >= 0 && m < SG_RATE_MODES) ? mode_names[m] : "?";
}

static double clamp_battery(double b)
{
    if (isnan(b))
        return 0.0;
    return b < 0.0 ? 0.0 : (b > 100.0 ? 100.0 : b);
}

sg_rate_mode sg_rate_mode_for(double battery_pct, bool user_active)
{
    double b = clamp_battery(battery_pct);
    if (b < 15.0)
        return SG_RATE_MINIMAL;
    if (b < 30.0)
        return SG_RATE_LOW;
    if (b < 60.0 && !user_active)
        return SG_RATE_LOW;
    return SG_RATE_MEDIUM;
}

void sg_rate_config_default(sg_rate_config *c)
{
    c->camera_fps = SG_CAMERA_FPS;
    c->active_window_ms = 10000.0;
    c->motion_threshold = 0.3;
    c->motion_boost = 1.5;
    c->motion_min_battery = 30.0;
    c->motion_hold_ms = 1000.0;
    c->forced_mode = -1;
}

static sg_rate_mode mode_of(const sg_rate_config *c, double battery, bool active)
{
    if (c->forced_mode >= 0 && c->forced_mode < SG_RATE_MODES)
        return (sg_rate_mode)c->forced_mode;
    return sg_rate_mode_for(battery, active);
}

static double boosted_fps(const sg_rate_config *c, sg_rate_mode mode, bool boost)
{
    double fps = sg_rate_mode_fps(mode);
    if (boost)
        fps *= c->motion_boost;
    double cam = c->camera_fps > 0 ? c->camera_fps : SG_CAMERA_FPS;
    return fps > cam ? cam : fps;
}

double sg_rate_target_fps(const sg_rate_config *cfg, double battery_pct, bool user_active,
                          double motion)
{
    sg_rate_config def;
    if (!cfg) {
        sg_rate_config_default(&def);
        cfg = &def;
    }
    double b = clamp_battery(battery_pct);
    bool boost = motion > cfg->motion_threshold && b > cfg->motion_min_battery;
    return boosted_fps(cfg, mode_of(cfg, b, user_active), boost);
}

struct sg_rate_controller {
    sg_rate_config cfg;
    bool has_interaction, has_motion;
    double last_interaction_ms, last_motion_ms;
    long long phase; /* capture accumulator, in milli-frames */
    sg_rate_stats stats;
};

sg_client_status sg_rate_controller_new(const sg_rate_config *cfg, sg_rate_controller **out)
{
    sg_rate_config def;
    if (!cfg) {
        sg_rate_config_default(&def);
        cfg = &def;
    }
    sg_rate_controller *rc = *out = calloc(1, sizeof *rc);
    if (!rc)
        return SG_CLIENT_ENOMEM;
    rc->cfg = *cfg;
    if (rc->cfg.camera_fps <= 0)
        rc->cfg.camera_fps = SG_CAMERA_FPS;
    if (!(rc->cfg.motion_boost >= 1.0)) /* also NaN */
        rc->cfg.motion_boost = 1.0;
    return SG_CLIENT_OK;
}

void sg_rate_controller_free(sg_rate_controller *rc) { free(rc); }

void sg_rate_force_mode(sg_rate_controller *rc, int mode) { rc->cfg.forced_mode = mode; }

void sg_rate_get_stats(const sg_rate_controller *rc, sg_rate_stats *out) { *out = rc->stats; }

void sg_rate_interaction(sg_rate_controller *rc, double now_ms)
{
    rc->has_interaction = true;
    rc->last_interaction_ms = now_ms;
}

bool sg_rate_user_active(const sg_rate_controller *rc, double now_ms)
{
    return rc->has_interaction && now_ms - rc->last_interaction_ms < rc->cfg.active_window_ms &&
           now_ms >= rc->last_interaction_ms;
}

sg_rate_decision sg_rate_on_frame(sg_rate_controller *rc, double now_ms, double battery_pct,
                                  double motion)
{
    sg_rate_decision d;
    memset(&d, 0, sizeof d);
    double b = clamp_battery(battery_pct);
    d.user_active = sg_rate_user_active(rc, now_ms);
    d.mode = mode_of(&rc->cfg, b, d.user_active);
    if (motion > rc->cfg.motion_threshold) {
        rc->has_motion = true;
        rc->last_motion_ms = now_ms;
    }
    bool recent_motion = motion > rc->cfg.motion_threshold ||
                         (rc->has_motion && now_ms >= rc->last_motion_ms &&
                          now_ms - rc->last_motion_ms < rc->cfg.motion_hold_ms);
    d.boosted = recent_motion && b > rc->cfg.motion_min_battery && rc->cfg.motion_boost > 1.0;
    d.target_fps = boosted_fps(&rc->cfg, d.mode, d.boosted);

    const long long full = (long long)rc->cfg.camera_fps * 1000;
    const long long step = llround(d.target_fps * 1000.0);
    if (rc->stats.frames == 0)
        rc->phase = full - step; /* the first frame is captured */
    rc->phase += step;
    if (rc->phase >= full) {
        d.capture = true;
        rc->phase -= full; /* now < step <= full: never two captures' worth of credit */
    }

    rc->stats.frames++;
    rc->stats.frames_in_mode[d.mode]++;
    if (d.capture) {
        rc->stats.captured++;
        rc->stats.captured_in_mode[d.mode]++;
    }
    return d;
}

/* ---- JPEG quality -------------------------------------------------------------------------- */

int sg_jpeg_quality_for(double battery_pct, double uplink_kbps)
{
    double b = clamp_battery(battery_pct);
    int q = b < 20.0 ? 60 : (b < 50.0 ? 75 : 85);
    if (uplink_kbps > 0.0) { /* false for NaN and "not measured" */
        if (uplink_kbps < 500.0)
            q -= 20;
        else if (uplink_kbps < 2000.0)
            q -= 10;
    }
    return q < SG_JPEG_QUALITY_FLOOR ? SG_JPEG_QUALITY_FLOOR : q;
}

/* ---- uplink estimate ------------------------------------------------------------------------ */

struct sg_uplink {
    double kbps; /* estimate, <= 0 when none */
    double alpha;
    size_t min_bytes;
    long samples;
};

sg_client_status sg_uplink_new(sg_uplink **out)
{
    sg_uplink *u = calloc(1, sizeof *u);
    *out = u;
    if (!u)
        return SG_CLIENT_ENOMEM;
    u->kbps = -1.0;
    u->alpha = 0.25;
    u->min_bytes = 4096;
    return SG_CLIENT_OK;
}

void sg_uplink_free(sg_uplink *u) { free(u); }

double sg_uplink_kbps(const sg_uplink *u) { return u->kbps; }

long sg_uplink_samples(const sg_uplink *u) { return u->samples; }

void sg_uplink_observe(sg_uplink *u, size_t bytes, double transfer_ms)
{
    if (bytes < u->min_bytes || !(transfer_ms >= 0.0) || !isfinite(transfer_ms))
        return;
    if (transfer_ms < 0.05) /* a loopback upload can "take" 0 ms */
        transfer_ms = 0.05;
    double kbps = (double)bytes * 8.0 / transfer_ms; /* bits per ms = kbit/s */
    if (u->samples == 0 || u->kbps <= 0.0)
        u->kbps = kbps;
    else
        u->kbps += u->alpha * (kbps - u->kbps);
    u->samples++;
}
