/*
 * pause: the opsdrill lab's pod sandbox process.
 *
 * It holds the pod's namespaces open and does nothing else: it sleeps until
 * SIGINT or SIGTERM (then exits 0) and, being PID 1 of a shared PID
 * namespace, reaps any child that gets re-parented to it.
 *
 * Build: gcc -static -Os -s -o pause pause.c
 * "pause -v" prints the version and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PAUSE_VERSION
#define PAUSE_VERSION "3.10-opsdrill"
#endif

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

static void on_child(int sig)
{
	int saved = errno;
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

static int install(int sig, void (*handler)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = (sig == SIGCHLD) ? SA_NOCLDSTOP | SA_RESTART : 0;
	return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("pause %s\n", PAUSE_VERSION);
		return 0;
	}
	if (getpid() != 1)
		fprintf(stderr, "pause: warning: not running as PID 1\n");

	if (install(SIGINT, on_stop) < 0 || install(SIGTERM, on_stop) < 0 ||
	    install(SIGCHLD, on_child) < 0) {
		perror("pause: sigaction");
		return 1;
	}

	/*
	 * Block the signals we wait for and let sigsuspend() unblock them
	 * atomically, so a signal that lands between the check and the sleep
	 * cannot be lost.
	 */
	sigset_t wait_set, old_set;
	sigemptyset(&wait_set);
	sigaddset(&wait_set, SIGINT);
	sigaddset(&wait_set, SIGTERM);
	sigaddset(&wait_set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &wait_set, &old_set);
	sigdelset(&old_set, SIGINT);
	sigdelset(&old_set, SIGTERM);
	sigdelset(&old_set, SIGCHLD);
	while (!stop_signal)
		sigsuspend(&old_set);
	fprintf(stderr, "pause: shutting down on signal %d\n", (int)stop_signal);
	return 0;
}
