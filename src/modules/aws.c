/*
 * aws.c - provisio-aws.so: the aws provider (providers/aws), so libcurl and
 * libxml2 load only where a configuration names an aws provider.
 */
#include "provisio/aws.h"
#include "util/module.h"

PV_MODULE("aws")

static int module_register(void) { return pv_provider_register_type("aws", pv_aws_new); }
