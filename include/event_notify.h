/*
 * event_notify.h: the C API of event-notify, the desk-phone event notification engine.
 *
 * The firmware (SIP stack, UI) reports its state transitions; the engine derives the twenty
 * phone events, expands the admin's URL template for each and sends the HTTP requests, retried
 * and bounded, from threads of its own. See docs/FIRMWARE.md for linking and an example.
 *
 * Rules that hold for every function:
 *  - Results: EN_OK (0) or a negative en_error; en_strerror() describes each.
 *  - Strings are NUL-terminated UTF-8, borrowed for the duration of the call only: the library
 *    copies what it keeps, and the caller keeps ownership (free them whenever you like).
 *    A NULL where a value is required is refused with EN_E_NULL, invalid UTF-8 with EN_E_UTF8.
 *  - Nothing returned needs freeing, except the engine itself (en_destroy).
 *  - Thread safety: every function may be called from any thread, concurrently, except
 *    en_destroy, which must be the last call on an engine (after other threads' calls on it
 *    have returned).
 *  - No Rust panic crosses this boundary: an internal error is returned as EN_E_PANIC (build the
 *    library with the `ffi` profile, which unwinds; see docs/FIRMWARE.md).
 *  - The library's threads block asynchronous signals: the program's signal handling is its own.
 *
 * This header is checked against the library by tests/it/ffi_header.rs: keep them in step.
 */
#ifndef EVENT_NOTIFY_H
#define EVENT_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this API; en_abi_version() returns the library's. */
#define EN_ABI_VERSION 1

/* Result codes. */
enum en_error {
    EN_OK = 0,
    EN_E_NULL = -1,            /* a required pointer argument is NULL */
    EN_E_UTF8 = -2,            /* a string argument is not valid UTF-8 */
    EN_E_UNKNOWN_VERB = -3,    /* neither a transition verb nor an event key or alias */
    EN_E_UNKNOWN_EVENT = -4,   /* en_event: not one of the twenty event keys or an alias */
    EN_E_MISSING_STATE = -5,   /* this transition verb needs a "state" field */
    EN_E_BAD_STATE = -6,       /* bad "state" value for this transition verb */
    EN_E_UNKNOWN_FIELD = -7,   /* not a variable name, "state", "reason" or "elsewhere" */
    EN_E_RANGE = -8,           /* an argument is out of range */
    EN_E_CONFIG_READ = -9,     /* the config file cannot be read */
    EN_E_CONFIG_INVALID = -10, /* the config file is invalid (the problems are logged) */
    EN_E_BOARD = -11,          /* the board file cannot be read or is invalid */
    EN_E_SYSTEM = -12,         /* a system resource failed (threads, descriptors, TLS setup) */
    EN_E_STOPPED = -13,        /* the engine has stopped: destroy it and create a new one */
    EN_E_LOGGER = -14,         /* en_set_log: another logger is installed in this process */
    EN_E_PANIC = -15           /* internal error caught at the boundary (a bug: report it) */
};

/* Log levels of en_set_log and of the log callback. */
enum en_log_level {
    EN_LOG_OFF = 0,
    EN_LOG_ERROR = 1,
    EN_LOG_WARN = 2,
    EN_LOG_INFO = 3,
    EN_LOG_DEBUG = 4,
    EN_LOG_TRACE = 5
};

/* An engine: opaque; created by en_create, freed by en_destroy. */
typedef struct en_engine en_engine;

/* The engine's counters, as `event-notify status` shows them. Filled by en_get_counters into
 * storage the caller owns. Fields are only ever appended (EN_ABI_VERSION tells). */
typedef struct en_counters {
    uint64_t messages;       /* reports the engine has handled */
    uint64_t events;         /* events derived from them */
    uint64_t queued;         /* notifications queued for delivery */
    uint64_t delivered;      /* notifications the receiver answered with 2xx/3xx */
    uint64_t retried;        /* attempts that will be tried again */
    uint64_t failed;         /* gave up: refused for good (4xx) or out of attempts */
    uint64_t dropped;        /* dropped because the outbox was full */
    uint64_t not_configured; /* events with no URL configured (or disabled) */
    uint64_t too_long;       /* expansions longer than the URL or body buffer: not sent */
    uint64_t pending;        /* in the outbox now, in flight included */
    uint64_t in_flight;      /* being sent now */
    uint64_t refused;        /* reports refused with an error code */
    uint64_t reloads;        /* config reloads that took effect */
    uint64_t reload_errors;  /* config reloads refused (the running config stayed) */
} en_counters;

/* The log callback: `user` as given to en_set_log, an en_log_level, and the line (borrowed for
 * the call, no trailing newline). Called from the engine's threads, possibly several at once. */
typedef void (*en_log_fn)(void *user, int level, const char *message);

/* The API version the library implements; compare with EN_ABI_VERSION. */
unsigned en_abi_version(void);

/* The library's version, e.g. "0.1.0". Static: never free it. */
const char *en_version(void);

/* A description of a result code. Static: never free it; never NULL. */
const char *en_strerror(int code);

/* Sends the library's log lines up to max_level (EN_LOG_ERROR .. EN_LOG_TRACE) to fn, with
 * `user` handed back unchanged. fn NULL or EN_LOG_OFF: logging off (the default). fn must be
 * safe to call from any thread, return quickly, and never call an en_* function.
 * Returns EN_OK, EN_E_RANGE (bad level) or EN_E_LOGGER. Call it before en_create to see why a
 * config is refused. */
int en_set_log(en_log_fn fn, void *user, int max_level);

/* Starts an engine: reads and validates the config file (JSON, as the Event Notify page saves
 * it), reads the board file if board_path is not NULL (model, versions, interface), and starts
 * the engine's threads. The config is re-read when the file changes, and by en_reload.
 * config_path: required. board_path: NULL for none. Both borrowed for the call.
 * err: NULL, or where the result code is written (EN_OK on success; else EN_E_NULL, EN_E_UTF8,
 * EN_E_CONFIG_READ, EN_E_CONFIG_INVALID, EN_E_BOARD, EN_E_SYSTEM, EN_E_PANIC).
 * Returns the engine (the caller owns it: free it with en_destroy), or NULL on failure. */
en_engine *en_create(const char *config_path, const char *board_path, int *err);

/* Reports a transition or a direct event with n fields keys[i] = values[i].
 * verb: a transition verb (call, register, media, refer, hook, dnd, forward, syslog, boot) or
 *   an event key or alias (incoming_call, dnd_on, call_established, ...): the vocabulary of
 *   `event-notify emit`. Transitions take a "state" field: call state=incoming|calling|ringing|
 *   confirmed|ended, register state=registering|ok|failed|off, media state=held|active,
 *   refer state=blind|attended, hook state=off|on, dnd/forward/syslog state=on|off.
 * keys: variable names without '$' (call_id, local, remote, display_remote, active_user,
 *   active_host, ...) or their aliases, plus "state", "reason" (a SIP Reason header value) and
 *   "elsewhere" ("1": the call was answered on another device, so it is not missed).
 * values: plain UTF-8, not percent-encoded; each is cut at 128 bytes.
 * keys and values may be NULL when n is 0. Everything is borrowed for the call.
 * Returns EN_OK once the engine has the report (events are derived and sent in the engine's
 * threads; see en_get_counters), or EN_E_NULL, EN_E_UTF8, EN_E_UNKNOWN_VERB, EN_E_MISSING_STATE,
 * EN_E_BAD_STATE, EN_E_UNKNOWN_FIELD, EN_E_STOPPED, EN_E_PANIC. A refused report is counted in
 * en_counters.refused and logged. May block briefly while 64 reports wait for the engine. */
int en_transition(en_engine *e, const char *verb, const char *const *keys,
                  const char *const *values, size_t n);

/* Reports a direct event: `event` is one of the twenty event keys or an alias (a transition verb
 * gives EN_E_UNKNOWN_EVENT). The fields are variable names without '$'; device variables given
 * here (phone_ip, mac, product, ...) override the engine's for this event only. Otherwise as
 * en_transition. */
int en_event(en_engine *e, const char *event, const char *const *keys,
             const char *const *values, size_t n);

/* Re-reads the config file. An invalid file is refused (EN_E_CONFIG_INVALID or
 * EN_E_CONFIG_READ, the problems are logged) and the running config stays. Waits for the
 * engine. Also EN_E_NULL, EN_E_STOPPED, EN_E_PANIC. */
int en_reload(en_engine *e);

/* Fills *out (owned by the caller) with the counters, counting every report this thread made
 * before. Waits for the engine. Returns EN_OK, EN_E_NULL, EN_E_STOPPED or EN_E_PANIC. */
int en_get_counters(en_engine *e, en_counters *out);

/* Stops the engine and frees it: waits up to flush_ms milliseconds for the queued notifications
 * to be delivered, then returns (what is left is logged and lost). e must not be used again.
 * A delivery attempt still running at the deadline ends in the background within the config's
 * delivery.timeout_ms: do not unload a shared library before that.
 * Returns EN_OK, EN_E_NULL (e is NULL: nothing done), EN_E_SYSTEM or EN_E_PANIC; e is freed
 * in every case but EN_E_NULL. */
int en_destroy(en_engine *e, unsigned flush_ms);

#ifdef __cplusplus
}
#endif

#endif /* EVENT_NOTIFY_H */
