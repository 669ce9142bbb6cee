/* volli/volli.h: the Volli client library. Include this one header. */
#ifndef VOLLI_VOLLI_H
#define VOLLI_VOLLI_H

#define VOLLI_VERSION "0.1.0"

#include "volli/client.h"
#include "volli/error.h"

#endif
