/*
 * en_call: a firmware-like C program linked against the event-notify static library.
 * tests/it/ffi_c.rs builds it (cc, or arm-linux-gnueabihf-gcc for armv7 under qemu-arm) and checks
 * what a loopback receiver got.
 *
 *   en_call call CONFIG BOARD   a short call from the "SIP thread" (incoming, confirmed, ended)
 *                               while a "UI thread" turns DND on; error handling; counters;
 *                               destroy with a flush. Prints `counters ...` and `destroy ...`.
 *   en_call flush CONFIG MS     one event, then destroy with a flush of MS milliseconds.
 *                               Prints `destroy RC ELAPSED_MS`.
 *
 * Exit status: 0 when every call returned what it should, 1 otherwise (with a line on stderr),
 * 2 for a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include "event_notify.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPECT(call, want)                                                                    \
    do {                                                                                      \
        int rc_ = (call);                                                                     \
        if (rc_ != (want)) {                                                                  \
            fprintf(stderr, "en_call.c:%d: %s returned %d (%s), expected %d (%s)\n", __LINE__, \
                    #call, rc_, en_strerror(rc_), (want), en_strerror(want));                 \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* What the log callback saw: every line goes to stderr, refusals are counted. */
struct log_state {
    pthread_mutex_t lock;
    unsigned refusals;
};

static void on_log(void *user, int level, const char *message)
{
    struct log_state *st = user;
    pthread_mutex_lock(&st->lock);
    fprintf(stderr, "en_call: log %d: %s\n", level, message);
    if (level == EN_LOG_WARN && strstr(message, " refused: ") != NULL)
        st->refusals++;
    pthread_mutex_unlock(&st->lock);
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The UI thread: DND on, while the SIP thread reports its call. */
static void *ui_thread(void *arg)
{
    static const char *const keys[] = {"state"};
    static const char *const values[] = {"on"};
    en_engine *e = arg;
    int rc = en_transition(e, "dnd", keys, values, COUNT(keys));
    return rc == EN_OK ? NULL : (void *)e; /* non-NULL: failed */
}

/* Everything a caller can get wrong is refused with a code, never a crash. */
static int misuse(en_engine *e)
{
    static const char *const state_key[] = {"state"};
    static const char *const no_value[] = {NULL};
    static const char *const incoming[] = {"incoming"};
    static const char *const bad_key[] = {"colour"};
    int err = 0;

    if (en_create(NULL, NULL, &err) != NULL || err != EN_E_NULL) {
        fprintf(stderr, "en_create(NULL) gave %d\n", err);
        return 1;
    }
    if (en_create("/nonexistent/event-notify.json", NULL, &err) != NULL ||
        err != EN_E_CONFIG_READ) {
        fprintf(stderr, "en_create(missing file) gave %d\n", err);
        return 1;
    }
    EXPECT(en_transition(NULL, "call", NULL, NULL, 0), EN_E_NULL);
    EXPECT(en_transition(e, NULL, NULL, NULL, 0), EN_E_NULL);
    EXPECT(en_transition(e, "call", state_key, no_value, 1), EN_E_NULL);
    EXPECT(en_transition(e, "c\xff\xfe", NULL, NULL, 0), EN_E_UTF8);
    EXPECT(en_transition(e, "calll", state_key, incoming, 1), EN_E_UNKNOWN_VERB);
    EXPECT(en_transition(e, "call", NULL, NULL, 0), EN_E_MISSING_STATE);
    EXPECT(en_transition(e, "call", bad_key, incoming, 1), EN_E_UNKNOWN_FIELD);
    EXPECT(en_event(e, "call", NULL, NULL, 0), EN_E_UNKNOWN_EVENT);
    EXPECT(en_get_counters(e, NULL), EN_E_NULL);
    EXPECT(en_reload(NULL), EN_E_NULL);
    EXPECT(en_destroy(NULL, 0), EN_E_NULL);
    if (strcmp(en_strerror(12345), "unknown result code") != 0 ||
        strcmp(en_strerror(EN_OK), "success") != 0) {
        fprintf(stderr, "en_strerror: unexpected text\n");
        return 1;
    }
    return 0;
}

static int call(const char *config, const char *board)
{
    static struct log_state log = {PTHREAD_MUTEX_INITIALIZER, 0};
    /* The display name lives in a buffer this program reuses: the library copies it. */
    char display[32];
    const char *keys[] = {"state", "call_id", "local", "remote", "display_remote",
                          "active_user", "active_host"};
    const char *values[] = {"incoming", "a84b4c76", "sip:1001@pbx.example",
                            "sip:1002@pbx.example", display, "1001", "pbx.example"};
    static const char *const confirmed[] = {"confirmed", "a84b4c76"};
    static const char *const ended[] = {"ended", "a84b4c76"};
    en_counters c;
    pthread_t ui;
    void *ui_failed = NULL;
    en_engine *e;
    int err = -1;
    long long t0;

    EXPECT(en_set_log(on_log, &log, 42), EN_E_RANGE);
    EXPECT(en_set_log(on_log, &log, EN_LOG_INFO), EN_OK);
    printf("abi %u version %s\n", en_abi_version(), en_version());
    if (en_abi_version() != EN_ABI_VERSION) {
        fprintf(stderr, "library ABI %u, header %d\n", en_abi_version(), EN_ABI_VERSION);
        return 1;
    }

    e = en_create(config, board, &err);
    if (e == NULL || err != EN_OK) {
        fprintf(stderr, "en_create(%s): %d %s\n", config, err, en_strerror(err));
        return 1;
    }
    if (misuse(e) != 0)
        return 1;

    if (pthread_create(&ui, NULL, ui_thread, e) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    strcpy(display, "Bob & Alice");
    EXPECT(en_transition(e, "call", keys, values, COUNT(keys)), EN_OK);
    memset(display, 'Z', sizeof display - 1);
    display[sizeof display - 1] = '\0';
    EXPECT(en_transition(e, "call", keys, confirmed, COUNT(confirmed)), EN_OK);
    EXPECT(en_transition(e, "call", keys, ended, COUNT(ended)), EN_OK);
    pthread_join(ui, &ui_failed);
    if (ui_failed != NULL) {
        fprintf(stderr, "the UI thread's report failed\n");
        return 1;
    }

    EXPECT(en_get_counters(e, &c), EN_OK);
    printf("counters messages=%llu events=%llu queued=%llu refused=%llu\n",
           (unsigned long long)c.messages, (unsigned long long)c.events,
           (unsigned long long)c.queued, (unsigned long long)c.refused);
    pthread_mutex_lock(&log.lock);
    printf("refusals logged %u\n", log.refusals);
    pthread_mutex_unlock(&log.lock);
    fflush(stdout);

    /* Nothing waited for delivery so far: the flush must deliver all four. */
    t0 = now_ms();
    err = en_destroy(e, 10000);
    printf("destroy %d %lld\n", err, now_ms() - t0);
    EXPECT(err, EN_OK);
    EXPECT(en_set_log(NULL, NULL, EN_LOG_OFF), EN_OK);
    return 0;
}

static int flush(const char *config, unsigned ms)
{
    static const char *const keys[] = {"call_id"};
    static const char *const values[] = {"f1"};
    int err = -1;
    long long t0;
    en_engine *e = en_create(config, NULL, &err);

    if (e == NULL) {
        fprintf(stderr, "en_create(%s): %d %s\n", config, err, en_strerror(err));
        return 1;
    }
    EXPECT(en_event(e, "dnd_on", keys, values, COUNT(keys)), EN_OK);
    t0 = now_ms();
    err = en_destroy(e, ms);
    printf("destroy %d %lld\n", err, now_ms() - t0);
    fflush(stdout);
    return err == EN_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "call") == 0)
        return call(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "flush") == 0)
        return flush(argv[2], (unsigned)strtoul(argv[3], NULL, 10));
    fprintf(stderr, "usage: en_call call CONFIG BOARD | en_call flush CONFIG MS\n");
    return 2;
}
