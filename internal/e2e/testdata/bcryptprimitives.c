/*
 * A stand-in for Windows' bcryptprimitives.dll, for running Go programs
 * under Wine releases that lack that DLL (Debian 12's Wine 8.0). Go's
 * Windows runtime (1.22 and later) loads it from system32 at start-up for
 * ProcessPrng, its source of random bytes, and stops with "fatal error:
 * bcryptprimitives.dll not found" without it. Every Windows version Go
 * supports has the DLL, so this is for TestWindowsExeUnderWine only,
 * which copies it into the throwaway Wine prefix's system32 when
 * missing. ProcessPrng is answered with BCryptGenRandom, which Wine has.
 *
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c -lbcrypt
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
