/* provisio.h - the whole public API of libprovisio. */
#ifndef PROVISIO_H
#define PROVISIO_H
#include "error.h"
#include "log.h"
#include "clock.h"
#include "operation.h"
#include "result.h"
#include "capabilities.h"
#include "strategy.h"
#include "metrics.h"
#include "context.h"
#include "sim.h"
#include "aws.h"
#include "balancer.h"
#include "chaos.h"
#include "composite.h"
#include "fallback.h"
#include "libvirt.h"
#include "config.h"
#define PROVISIO_VERSION "0.1.0"
#endif
