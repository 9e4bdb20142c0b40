/*
 * ringmqctl: the offline admin tool for users, vhosts and permissions. It
 * opens the store in the data directory (core/auth.c), applies one command
 * and saves. Command names and arguments follow rabbitmqctl.
 *
 * The broker reads the store only at start-up, so changes take effect at
 * its next start; run ringmqctl while the broker is stopped (there is no
 * lock yet, and no live management path). Exit status: 0 on success, 64 for
 * a usage error, 1 for any other error, each with one message on stderr.
 */
#include "core/auth.h"
#include "core/config.h"
#include "core/limits.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_EXIT_OK       0
#define CTL_EXIT_ERROR    1
#define CTL_EXIT_USAGE    64 /* sysexits.h EX_USAGE, as rabbitmqctl */
#define CTL_ARGS_MAX      8  /* most positional arguments of any command (set_user_tags) */
#define CTL_DEFAULT_VHOST "/"

typedef struct {
    auth_store *store;
    const char *vhost; /* -p VHOST, default "/" */
    const char *args[CTL_ARGS_MAX];
    int args_count;
    bool quiet;
    auth_error err;
} ctl_context;

typedef struct {
    const char *name;
    int args_min;
    int args_max;
    bool writes;       /* save the store afterwards */
    bool vhost_option; /* takes -p VHOST */
    const char *usage;
    bool (*run)(ctl_context *ctx);
} ctl_command;

static void ctl_say(const ctl_context *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One progress line on stdout, like rabbitmqctl's; -q silences it. */
static void ctl_say(const ctl_context *ctx, const char *fmt, ...)
{
    if (ctx->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* The password argument, or one line of standard input when it was left out (keeps it out of
 * the process list and shell history). */
static const char *ctl_password(ctl_context *ctx, int index)
{
    static char line[LIMIT_PASSWORD_BYTES_MAX + 2];
    if (index < ctx->args_count) return ctx->args[index];
    if (fgets(line, sizeof(line), stdin) == NULL) {
        snprintf(ctx->err.text, sizeof(ctx->err.text), "no password given on standard input");
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

static bool ctl_add_user(ctl_context *ctx)
{
    const char *pass = ctl_password(ctx, 1);
    ctl_say(ctx, "Adding user \"%s\" ...", ctx->args[0]);
    return pass != NULL && auth_user_add(ctx->store, ctx->args[0], pass, &ctx->err);
}

static bool ctl_delete_user(ctl_context *ctx)
{
    ctl_say(ctx, "Deleting user \"%s\" ...", ctx->args[0]);
    return auth_user_delete(ctx->store, ctx->args[0], &ctx->err);
}

static bool ctl_change_password(ctl_context *ctx)
{
    const char *pass = ctl_password(ctx, 1);
    ctl_say(ctx, "Changing password for user \"%s\" ...", ctx->args[0]);
    return pass != NULL && auth_user_change_password(ctx->store, ctx->args[0], pass, &ctx->err);
}

static bool ctl_set_user_tags(ctl_context *ctx)
{
    char tags[LIMIT_USER_TAGS_BYTES_MAX + 2] = "";
    size_t len = 0;
    for (int i = 1; i < ctx->args_count; i++) {
        int n = snprintf(tags + len, sizeof(tags) - len, "%s%s", i > 1 ? "," : "", ctx->args[i]);
        if (n < 0 || (size_t)n >= sizeof(tags) - len) {
            snprintf(ctx->err.text, sizeof(ctx->err.text), "tags are longer than %u bytes",
                     LIMIT_USER_TAGS_BYTES_MAX);
            return false;
        }
        len += (size_t)n;
    }
    ctl_say(ctx, "Setting tags for user \"%s\" to [%s] ...", ctx->args[0], tags);
    return auth_user_set_tags(ctx->store, ctx->args[0], tags, &ctx->err);
}

static void ctl_print_tags(const char *tags)
{
    putchar('[');
    for (const char *p = tags; *p != '\0'; p++) {
        if (*p == ',')
            fputs(", ", stdout);
        else
            putchar(*p);
    }
    putchar(']');
}

static bool ctl_list_users(ctl_context *ctx)
{
    ctl_say(ctx, "Listing users ...");
    if (!ctx->quiet) puts("user\ttags");
    for (uint32_t i = 0; i < auth_users_count(ctx->store); i++) {
        auth_user_view u = auth_user_at(ctx->store, i);
        printf("%s\t", u.name);
        ctl_print_tags(u.tags);
        putchar('\n');
    }
    return true;
}

static bool ctl_authenticate_user(ctl_context *ctx)
{
    const char *user = ctx->args[0];
    const char *pass = ctl_password(ctx, 1);
    if (pass == NULL) return false;
    ctl_say(ctx, "Authenticating user \"%s\" ...", user);
    if (!auth_check_password(ctx->store, user, strlen(user), pass, strlen(pass))) {
        snprintf(ctx->err.text, sizeof(ctx->err.text), "user '%s': invalid credentials", user);
        return false;
    }
    ctl_say(ctx, "Success");
    return true;
}

static bool ctl_add_vhost(ctl_context *ctx)
{
    ctl_say(ctx, "Adding vhost \"%s\" ...", ctx->args[0]);
    return auth_vhost_add(ctx->store, ctx->args[0], &ctx->err);
}

static bool ctl_delete_vhost(ctl_context *ctx)
{
    ctl_say(ctx, "Deleting vhost \"%s\" ...", ctx->args[0]);
    return auth_vhost_delete(ctx->store, ctx->args[0], &ctx->err);
}

static bool ctl_list_vhosts(ctl_context *ctx)
{
    ctl_say(ctx, "Listing vhosts ...");
    if (!ctx->quiet) puts("name");
    for (uint32_t i = 0; i < auth_vhosts_count(ctx->store); i++) puts(auth_vhost_at(ctx->store, i));
    return true;
}

static bool ctl_set_permissions(ctl_context *ctx)
{
    ctl_say(ctx, "Setting permissions for user \"%s\" in vhost \"%s\" ...", ctx->args[0],
            ctx->vhost);
    return auth_permissions_set(ctx->store, ctx->args[0], ctx->vhost, ctx->args[1], ctx->args[2],
                                ctx->args[3], &ctx->err);
}

static bool ctl_clear_permissions(ctl_context *ctx)
{
    ctl_say(ctx, "Clearing permissions for user \"%s\" in vhost \"%s\" ...", ctx->args[0],
            ctx->vhost);
    return auth_permissions_clear(ctx->store, ctx->args[0], ctx->vhost, &ctx->err);
}

static bool ctl_list_permissions(ctl_context *ctx)
{
    const char *vhost = ctx->vhost;
    if (!auth_vhost_exists(ctx->store, vhost, strlen(vhost))) {
        snprintf(ctx->err.text, sizeof(ctx->err.text), "no such vhost '%s'", vhost);
        return false;
    }
    ctl_say(ctx, "Listing permissions for vhost \"%s\" ...", vhost);
    if (!ctx->quiet) puts("user\tconfigure\twrite\tread");
    for (uint32_t i = 0; i < auth_users_count(ctx->store); i++) {
        auth_user_view u = auth_user_at(ctx->store, i);
        for (uint32_t j = 0; j < u.permissions_count; j++) {
            auth_permission_view p = auth_permission_at(ctx->store, i, j);
            if (strcmp(p.vhost, vhost) == 0)
                printf("%s\t%s\t%s\t%s\n", u.name, p.configure, p.write, p.read);
        }
    }
    return true;
}

static bool ctl_list_user_permissions(ctl_context *ctx)
{
    const char *user = ctx->args[0];
    uint32_t i = 0;
    while (i < auth_users_count(ctx->store) && strcmp(auth_user_at(ctx->store, i).name, user) != 0)
        i++;
    if (i == auth_users_count(ctx->store)) {
        snprintf(ctx->err.text, sizeof(ctx->err.text), "no such user '%s'", user);
        return false;
    }
    ctl_say(ctx, "Listing permissions for user \"%s\" ...", user);
    if (!ctx->quiet) puts("vhost\tconfigure\twrite\tread");
    auth_user_view u = auth_user_at(ctx->store, i);
    for (uint32_t j = 0; j < u.permissions_count; j++) {
        auth_permission_view p = auth_permission_at(ctx->store, i, j);
        printf("%s\t%s\t%s\t%s\n", p.vhost, p.configure, p.write, p.read);
    }
    return true;
}

static const ctl_command ctl_commands[] = {
    {"add_user", 1, 2, true, false, "add_user NAME [PASSWORD]", ctl_add_user},
    {"delete_user", 1, 1, true, false, "delete_user NAME", ctl_delete_user},
    {"change_password", 1, 2, true, false, "change_password NAME [PASSWORD]", ctl_change_password},
    {"set_user_tags", 1, CTL_ARGS_MAX, true, false, "set_user_tags NAME [TAG ...]",
     ctl_set_user_tags},
    {"list_users", 0, 0, false, false, "list_users", ctl_list_users},
    {"authenticate_user", 1, 2, false, false, "authenticate_user NAME [PASSWORD]",
     ctl_authenticate_user},
    {"add_vhost", 1, 1, true, false, "add_vhost NAME", ctl_add_vhost},
    {"delete_vhost", 1, 1, true, false, "delete_vhost NAME", ctl_delete_vhost},
    {"list_vhosts", 0, 0, false, false, "list_vhosts", ctl_list_vhosts},
    {"set_permissions", 4, 4, true, true, "set_permissions [-p VHOST] USER CONF WRITE READ",
     ctl_set_permissions},
    {"clear_permissions", 1, 1, true, true, "clear_permissions [-p VHOST] USER",
     ctl_clear_permissions},
    {"list_permissions", 0, 0, false, true, "list_permissions [-p VHOST]", ctl_list_permissions},
    {"list_user_permissions", 1, 1, false, false, "list_user_permissions USER",
     ctl_list_user_permissions},
};

static void ctl_usage(FILE *out)
{
    fprintf(out, "usage: ringmqctl [--data-dir DIR | --config FILE] [-q] COMMAND [ARGS]\n"
                 "\ncommands:\n");
    for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]); i++)
        fprintf(out, "  %s\n", ctl_commands[i].usage);
    fprintf(out, "\nA PASSWORD left out is read from the first line of standard input.\n"
                 "The data directory defaults to the broker's (data_dir in --config FILE, or\n"
                 "./ringmq-data). Run while the broker is stopped: it reads the store only at\n"
                 "start-up.\n");
}

static int ctl_usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "ringmqctl: %s%s\n", what, arg);
    fprintf(stderr, "Try 'ringmqctl --help'.\n");
    return CTL_EXIT_USAGE;
}

static const ctl_command *ctl_find(const char *name)
{
    for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]); i++)
        if (strcmp(ctl_commands[i].name, name) == 0) return &ctl_commands[i];
    return NULL;
}

/* Global options before the command; returns the index of the command or -1 on error. */
static int ctl_parse_globals(int argc, char **argv, char *data_dir, size_t data_dir_size,
                             bool *quiet, bool *help)
{
    config cfg;
    config_defaults(&cfg);
    snprintf(data_dir, data_dir_size, "%s", cfg.data_dir);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
            *help = true;
        } else if (strcmp(opt, "-q") == 0 || strcmp(opt, "--quiet") == 0) {
            *quiet = true;
        } else if (strcmp(opt, "--data-dir") == 0 && i + 1 < argc) {
            snprintf(data_dir, data_dir_size, "%s", argv[++i]);
        } else if (strcmp(opt, "--config") == 0 && i + 1 < argc) {
            config_error cerr;
            if (!config_load_file(&cfg, argv[++i], &cerr)) {
                fprintf(stderr, "ringmqctl: %s\n", cerr.text);
                return -1;
            }
            snprintf(data_dir, data_dir_size, "%s", cfg.data_dir);
        } else {
            ctl_usage_error("unknown option or missing value: ", opt);
            return -1;
        }
    }
    return i;
}

/* The command's own arguments: positionals, and -p/--vhost VHOST anywhere among them. */
static bool ctl_parse_args(ctl_context *ctx, const ctl_command *cmd, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (cmd->vhost_option && (strcmp(argv[i], "-p") == 0 || strcmp(argv[i], "--vhost") == 0)) {
            if (i + 1 == argc) return false;
            ctx->vhost = argv[++i];
            continue;
        }
        if (ctx->args_count == cmd->args_max) return false;
        ctx->args[ctx->args_count++] = argv[i];
    }
    return ctx->args_count >= cmd->args_min;
}

int main(int argc, char **argv)
{
    static char data_dir[LIMIT_PATH_BYTES_MAX];
    ctl_context ctx = {.vhost = CTL_DEFAULT_VHOST};
    bool help = false;
    int first = ctl_parse_globals(argc, argv, data_dir, sizeof(data_dir), &ctx.quiet, &help);
    if (first < 0) return CTL_EXIT_USAGE;
    if (help) {
        ctl_usage(stdout);
        return CTL_EXIT_OK;
    }
    if (first == argc) return ctl_usage_error("no command given", "");
    const ctl_command *cmd = ctl_find(argv[first]);
    if (cmd == NULL) return ctl_usage_error("unknown command: ", argv[first]);
    if (!ctl_parse_args(&ctx, cmd, argc - first - 1, argv + first + 1))
        return ctl_usage_error("usage: ringmqctl ", cmd->usage);

    ctx.store = auth_store_open(data_dir, &ctx.err);
    if (ctx.store == NULL) {
        fprintf(stderr, "ringmqctl: %s\n", ctx.err.text);
        return CTL_EXIT_ERROR;
    }
    bool ok = cmd->run(&ctx);
    if (ok && cmd->writes) ok = auth_store_save(ctx.store, &ctx.err);
    auth_store_close(ctx.store);
    if (!ok) {
        fprintf(stderr, "ringmqctl: %s: %s\n", cmd->name, ctx.err.text);
        return CTL_EXIT_ERROR;
    }
    return CTL_EXIT_OK;
}
