/*
 * business-hours: deny deletes outside business hours, 08:00-18:00.
 *
 * The hour is the caller's local hour from context.hour when the request
 * carries one (the engine cannot know the caller's time zone), otherwise
 * the UTC hour from the engine's clock. The manifest's prefilter means the
 * engine calls this only for Action::"delete".
 */
#include "creto.h"

#define OPEN_HOUR 8
#define CLOSE_HOUR 18
#define NS_PER_HOUR 3600000000000LL

int64_t creto_evaluate(uint32_t n)
{
    const creto_request *r = creto_request_parse(n);
    if (!r)
        return creto_error(CRETO_STR("business-hours: malformed request"));
    /* The prefilter already narrows calls to deletes; checking again keeps
     * the module correct under any manifest. */
    if (!creto_str_eq(creto_action_id(r), CRETO_STR("delete")))
        return creto_continue();

    int64_t hour;
    creto_str v = creto_json_get(creto_context(r), CRETO_STR("hour"));
    if (!v.ptr || !creto_json_int(v, &hour) || hour < 0 || hour > 23)
        hour = creto_time_now() / NS_PER_HOUR % 24;

    if (hour >= OPEN_HOUR && hour < CLOSE_HOUR)
        return creto_continue();
    return creto_deny(CRETO_STR("no-deletes-after-hours"), CRETO_STR("deletes are allowed 08:00-18:00 only"));
}
