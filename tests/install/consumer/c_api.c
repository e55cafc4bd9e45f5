/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Uses the installed C API through find_package: a name that is not published. */
#include <stdio.h>
#include <veridian/ipc.h>

int main(void) {
    vipc_connect_options options;
    vipc_connect_options_init(&options);
    options.runtime_dir = "/nonexistent-vipc-consumer";
    vipc_connection* c = NULL;
    const int rc = vipc_connect("consumer/none", &options, &c);
    if (rc == VIPC_OK) return 1;
    printf("consumer_c: the installed C API works (%s: %s)\n", vipc_error_name(rc),
           vipc_last_error_detail());
    return 0;
}
