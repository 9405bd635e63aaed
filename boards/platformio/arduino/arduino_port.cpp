/* onward's port for the Arduino framework (any core: STM32duino, Arduino mbed, ESP32): the host link is
 * Serial, setup() runs the frame loop. The runtime (firmware/, the `onward` library) must be built with
 * -D ONW_NO_MAIN so that its main() gives way to the framework's; it serves frames from onw_main(). */
#include <Arduino.h>

extern "C" {
#include "onward/port.h"

int onw_main(void); /* firmware/src/app.c: port init, RESET, then serve frames forever */

void onw_port_init(void)
{
    Serial.begin(115200);
    while (!Serial) { /* boards with native USB: until the host opens the port */
    }
}

int onw_port_getc(void)
{
    int c;
    while ((c = Serial.read()) < 0) {
        yield();
    }
    return c;
}

void onw_port_putc(uint8_t byte)
{
    Serial.write(byte);
}

void onw_port_flush(void)
{
    Serial.flush();
}

uint32_t onw_port_cycles(void)
{
    return (uint32_t)micros(); /* microseconds, not cycles: STATS only reports it */
}
}

void setup()
{
    onw_main();
}

void loop()
{
}
