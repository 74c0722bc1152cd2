/* hello-c: prints the platform it runs on (from uname) and the one it was built for. */
#include <stdio.h>
#include <sys/utsname.h>

#if defined(__x86_64__)
#define BUILT_FOR "amd64"
#elif defined(__aarch64__)
#define BUILT_FOR "arm64"
#elif defined(__arm__)
#define BUILT_FOR "arm"
#else
#define BUILT_FOR "unknown"
#endif

int main(void)
{
    struct utsname u;
    if (uname(&u) != 0) {
        perror("uname");
        return 1;
    }
    printf("hello-c %s/%s (built for %s)\n", u.sysname, u.machine, BUILT_FOR);
    return 0;
}
